"""The tenant-level CLV service: records per tenant and customer, computed, stored, cached.

:class:`ClvService` (the facade the edges use, :mod:`~nextbest_clv.service.facade`) and the
service of a host (:mod:`~nextbest_clv.service.per_host`) are exported here, with the
namespaces and constants callers need; every part lives in a submodule of its own.
"""

from nextbest_clv.service.facade import CUSTOMER_NAMESPACES, ClvService
from nextbest_clv.service.per_host import attach, service_for
from nextbest_clv.service.records import RECORDS_NAMESPACE, SEGMENTS
from nextbest_clv.service.settings_repository import CONFIG_NAMESPACE, SCHEDULE_STATE_KEY
from nextbest_clv.service.tenant_batch import BatchResult

__all__ = [
    "CONFIG_NAMESPACE",
    "CUSTOMER_NAMESPACES",
    "RECORDS_NAMESPACE",
    "SCHEDULE_STATE_KEY",
    "SEGMENTS",
    "BatchResult",
    "ClvService",
    "attach",
    "service_for",
]
