"""What a population simulation is asked to do (:class:`SimulationOptions`), parsed from the
CLI's options or an HTTP body by one function, so both refuse bad input the same way: an
:class:`~nextbest.store.InvalidInputError` naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..store import MAX_FLOW_VERSION, InvalidInputError, id_problem, parse_time

#: The largest sample a run may ask for (the whole tenant needs no sample).
MAX_SAMPLE = 10_000_000
#: Seeds are unsigned 63-bit integers (stored as JSON, read back the same).
MAX_SEED = 2**63 - 1
_FIELDS = frozenset({"flow", "version", "compare", "segment", "sample", "seed", "asOf", "by"})


@dataclass(frozen=True, slots=True)
class FlowRef:
    """A flow to simulate: its key and a version (None: the published one)."""

    key: str
    version: int | None = None

    def __str__(self) -> str:
        return self.key if self.version is None else f"{self.key}@{self.version}"


@dataclass(frozen=True, slots=True)
class SimulationOptions:
    """A simulation's inputs: the flow (and one to compare it with), which customers (all, a
    ``segment`` of the breakdown ``by``, a reproducible ``sample`` drawn with ``seed``), the time
    the decisions are made as of, and the context name to break results down by (None: the
    first name the plugins suggest through ``report_dimensions``)."""

    flow: FlowRef
    as_of: datetime
    compare: FlowRef | None = None
    segment: str | None = None
    sample: int | None = None
    seed: int | None = None
    by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The inputs as stored with the run and echoed in its result (camelCase JSON)."""
        return {
            "flow": self.flow.key,
            "version": self.flow.version,
            "compare": None if self.compare is None else str(self.compare),
            "segment": self.segment,
            "sample": self.sample,
            "seed": self.seed,
            "asOf": self.as_of.isoformat(),
            "by": self.by,
        }


def _bad(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", field=field)


def _id(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(field, "must be a string")
    problem = id_problem(value)
    if problem is not None:
        raise _bad(field, problem)
    return value


def _int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(field, f"must be an integer from {low} to {high}")
    return value


def parse_flow_ref(field: str, text: Any) -> FlowRef:
    """``KEY`` or ``KEY@VERSION``; InvalidInputError naming ``field`` otherwise."""
    if not isinstance(text, str):
        raise _bad(field, "must be a flow key, optionally with @VERSION")
    key, at, version = text.rpartition("@")
    if not at:
        return FlowRef(_id(field, text))
    return FlowRef(_id(field, key), _int(field, version, 1, MAX_FLOW_VERSION))


def parse_options(raw: Mapping[str, Any], *, now: datetime) -> SimulationOptions:
    """Options from a mapping with the keys of :meth:`SimulationOptions.to_dict` (``flow``
    required; ``asOf`` an ISO-8601 time, default ``now``; ``sample`` >= 1 and ``seed`` only
    together). Unknown keys and bad values raise InvalidInputError naming the field."""
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise _bad(unknown[0], f"unknown field; the fields are {', '.join(sorted(_FIELDS))}")
    if raw.get("flow") is None:
        raise _bad("flow", "is required")
    flow = FlowRef(_id("flow", raw["flow"]))
    if raw.get("version") is not None:
        flow = FlowRef(flow.key, _int("version", raw["version"], 1, MAX_FLOW_VERSION))
    compare = None if raw.get("compare") is None else parse_flow_ref("compare", raw["compare"])
    segment = None if raw.get("segment") is None else _id("segment", raw["segment"])
    by = None if raw.get("by") is None else _id("by", raw["by"])
    sample = None if raw.get("sample") is None else _int("sample", raw["sample"], 1, MAX_SAMPLE)
    seed = None if raw.get("seed") is None else _int("seed", raw["seed"], 0, MAX_SEED)
    if seed is not None and sample is None:
        raise _bad("seed", "is given without sample: a seed draws a sample")
    if sample is not None and seed is None:
        raise _bad("sample", "needs a seed so the sample can be drawn again (give seed)")
    as_of = now
    if raw.get("asOf") is not None:
        value = raw["asOf"]
        if isinstance(value, datetime):
            as_of = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, str):
            try:
                as_of = parse_time(value)
            except ValueError as exc:
                raise _bad("asOf", str(exc)) from None
        else:
            raise _bad("asOf", "must be an ISO-8601 time, e.g. 2026-01-31T12:00:00Z")
    return SimulationOptions(flow, as_of.astimezone(UTC), compare, segment, sample, seed, by)
