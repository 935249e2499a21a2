"""Builders for flow documents, offers and requests, and small readers of decisions.

Imported by the host tests as ``hostkit`` (tests/host is on sys.path under pytest's default
import mode); fixtures live in conftest.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from nextbest import Decision, Host, RuleContext, RuleOutcome, RuleType, hookimpl

AS_OF = "2026-03-10T12:00:00Z"


# -- document builders -------------------------------------------------------------------------
def flow(*nodes: dict[str, Any], key: str = "t", **extra: Any) -> dict[str, Any]:
    """A flow document; with no nodes, inventory + score + rank."""
    if not nodes:
        nodes = (inventory(), score(), rank())
    return {"key": key, "version": 2, "nodes": list(nodes), **extra}


def inventory(node_id: str = "inv", **config: Any) -> dict[str, Any]:
    return {"type": "inventory", "id": node_id, "config": config}


def qualify(*rules: dict[str, Any], node_id: str = "q") -> dict[str, Any]:
    return {"type": "qualify", "id": node_id, "config": {"rules": list(rules)}}


def rule(rule_id: str, rule_type: str, config: dict[str, Any] | None = None, **kw: Any) -> dict:
    out: dict[str, Any] = {"id": rule_id, "ruleType": rule_type, **kw}
    if config is not None:
        out["config"] = config
    return out


def compute(*fields: tuple[str, str] | tuple[str, str, str], node_id: str = "c") -> dict:
    out = []
    for f in fields:
        item = {"name": f[0], "formula": f[1]}
        if len(f) == 3:
            item["outputType"] = f[2]
        out.append(item)
    return {"type": "compute", "id": node_id, "config": {"fields": out}}


def score(node_id: str = "sc", **config: Any) -> dict[str, Any]:
    return {"type": "score", "id": node_id, "config": config}


def rank(node_id: str = "rk", **config: Any) -> dict[str, Any]:
    return {"type": "rank", "id": node_id, "config": config}


def extension(hook: str, node_id: str | None = None) -> dict[str, Any]:
    return {"type": "extension_point", "id": node_id or hook, "config": {"hook": hook}}


def offer(offer_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": offer_id, **fields}


def request(**fields: Any) -> dict[str, Any]:
    """A decision request with a fixed asOf and the trace on unless told otherwise."""
    out: dict[str, Any] = {"customerId": "c1", "asOf": AS_OF, "explain": True}
    out.update(fields)
    return out


def decide(h: Host, flow_doc: dict[str, Any], offers: list[dict[str, Any]], **req: Any) -> Decision:
    """Load ``flow_doc`` and ``offers`` into ``h`` and run one decision."""
    return h.decide("t1", request(**req), flow=h.load_flow(flow_doc), offers=h.load_offers(offers))


def ids(decision: Decision) -> list[str]:
    """Offer ids of the decision, in rank order."""
    return [item.offer_id for item in decision.items]


def scores(decision: Decision) -> dict[str, float]:
    return {item.offer_id: item.score for item in decision.items}


def drops(decision: Decision) -> dict[str, Any]:
    """Drops by offer id (the trace must be on)."""
    assert decision.trace is not None
    return {d.offer_id: d for d in decision.trace.drops}


def issue_paths(exc: Any) -> list[str]:
    return [issue.path for issue in exc.issues]


# -- test plugins ------------------------------------------------------------------------------
class CountingConfig(BaseModel):
    """Config of the ``counting`` test rule type."""

    model_config = ConfigDict(extra="forbid")
    tag: str
    passed: bool = True
    multiplier: float | None = None
    fail: bool = False


class CountingPlugin:
    """Registers the ``counting`` rule type: records (tag, offer id) per evaluation and returns
    the configured outcome (or raises when ``fail`` is set)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def register_rule_types(self, register: Any) -> None:
        register(RuleType("counting", CountingConfig, self._evaluate, "eligibility"))

    def _evaluate(self, cfg: CountingConfig, ctx: RuleContext) -> RuleOutcome:
        self.calls.append((cfg.tag, ctx.offer.id))
        if cfg.fail:
            raise RuntimeError(f"counting rule {cfg.tag} exploded")
        return RuleOutcome(cfg.passed, multiplier=cfg.multiplier, reason=f"tag {cfg.tag}")

    def tags(self, offer_id: str | None = None) -> list[str]:
        return [tag for tag, oid in self.calls if offer_id is None or oid == offer_id]


def counting(rule_id: str, passed: bool = True, **kw: Any) -> dict[str, Any]:
    """A ``counting`` rule whose tag is its id."""
    cfg: dict[str, Any] = {"tag": rule_id, "passed": passed}
    for key in ("multiplier", "fail"):
        if key in kw:
            cfg[key] = kw.pop(key)
    return rule(rule_id, "counting", cfg, **kw)
