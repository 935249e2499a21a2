"""Exception types raised by the host. Each message says what to fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class NextbestError(Exception):
    """Base class of every error the host raises on purpose."""


@dataclass(frozen=True)
class FlowIssue:
    """One problem in a flow or offer document, located by its path (``nodes[3].config.x``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class FlowValidationError(NextbestError, ValueError):
    """A flow or offer catalog failed validation; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[FlowIssue], *, source: str | None = None) -> None:
        self.issues = list(issues)
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"{head}{len(self.issues)} validation error(s)\n{lines}")


class PluginError(NextbestError):
    """A plugin could not be loaded or registered something invalid."""


class DecisionError(NextbestError):
    """A decision could not be made (unknown flow, or a plugin failed under the ``fail`` policy)."""


class UnknownFlowError(DecisionError, LookupError):
    """No (published) flow with that key exists for the tenant."""


class StoredPolicyError(DecisionError):
    """A contact policy stored for the tenant no longer validates (written around the API, or
    by an older version): decisions are refused rather than made without it, since the broken
    policy may be a legal limit such as a do-not-contact exclusion. ``policy`` names it;
    ``issues`` lists its problems. Fix it with ``PUT`` or remove it with ``DELETE
    /api/v1/contact-policies/{name}``."""

    def __init__(self, policy: str, issues: Sequence[FlowIssue]) -> None:
        self.policy = policy
        self.issues = list(issues)
        problems = "; ".join(str(i) for i in self.issues)
        super().__init__(
            f"stored contact policy {policy!r} is invalid ({problems}); decisions are refused "
            f"until it is fixed (PUT) or removed (DELETE /api/v1/contact-policies/{policy})"
        )


class PageInputError(NextbestError, ValueError):
    """A report page's query parameter is invalid: ``field`` names it (``query.<name>``) and
    the message says the rule. The report answers 400 with both, never a 500."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PageNotFoundError(NextbestError, LookupError):
    """What a report page was asked to show does not exist for the tenant (an unknown
    customer, a run that is gone): the report answers 404 with the message."""
