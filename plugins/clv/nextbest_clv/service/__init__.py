"""The tenant-level CLV service: records per tenant and customer, computed, stored, cached.

:class:`ClvService` (the facade the edges use) and the process-wide registry are exported
here, with the namespaces and constants callers need; the parts live in the submodules.
"""

from nextbest_clv.service.facade import (
    CONFIG_NAMESPACE,
    RECORDS_NAMESPACE,
    SCHEDULE_STATE_KEY,
    SEGMENTS,
    BatchResult,
    ClvService,
    all_services,
    attach,
    service_for,
    service_for_store,
)

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
