"""The tenant-level CLV service: records per tenant and customer, computed, stored, cached.

:class:`ClvService` (the facade the edges use, :mod:`~nextbest_clv.service.facade`) and the
process-wide registry (:mod:`~nextbest_clv.service.registry`) are exported here, with the
namespaces and constants callers need; every part lives in a submodule of its own.
"""

from nextbest_clv.service.facade import ClvService
from nextbest_clv.service.records import RECORDS_NAMESPACE, SEGMENTS
from nextbest_clv.service.registry import all_services, attach, service_for, service_for_store
from nextbest_clv.service.settings_repository import CONFIG_NAMESPACE, SCHEDULE_STATE_KEY
from nextbest_clv.service.tenant_batch import BatchResult

__all__ = [
    "CONFIG_NAMESPACE",
    "RECORDS_NAMESPACE",
    "SCHEDULE_STATE_KEY",
    "SEGMENTS",
    "BatchResult",
    "ClvService",
    "all_services",
    "attach",
    "service_for",
    "service_for_store",
]
