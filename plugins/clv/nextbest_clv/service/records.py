"""The CLV record as stored (a plugin document) and as served (JSON with ``source``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring as encode_json_string
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from nextbest.store import InvalidInputError
from nextbest_clv.core.rfm import SEGMENT_ORDER, RfmBatch, RfmRecord

__all__ = [
    "MODEL_FIELDS",
    "RECORDS_NAMESPACE",
    "RECORD_FIELDS",
    "SEGMENTS",
    "BatchDocuments",
    "Source",
    "basis_of",
    "computed_as_of",
    "epoch_us",
    "finite_numbers",
    "is_current",
    "iso_time",
    "matches_basis",
    "public_record",
    "record_document",
    "served_record",
]

#: Plugin-document namespace of the stored records (key: customer id).
RECORDS_NAMESPACE = "clv.records"
#: Segment names, in report order.
SEGMENTS: tuple[str, ...] = tuple(s.value for s in SEGMENT_ORDER)
#: The fields of a served record, in order.
RECORD_FIELDS: tuple[str, ...] = (
    "customerId",
    "clvScore",
    "predictedRevenue",
    "churnProbability",
    "rfmRecency",
    "rfmFrequency",
    "rfmMonetary",
    "segment",
    "computedAt",
    "source",
)
Source = Literal["cached", "computed"]
# Internal keys of a stored document (not served): what the record was computed from.
# [interactions, last_at in whole epoch microseconds, total_value] of the customer summary
_BASIS = "basis"
_SETTINGS = "settings"  # settings_fingerprint of the settings used


def epoch_us(epoch_seconds: float) -> int:
    """Whole epoch microseconds (times from the store round-trip exactly at this resolution)."""
    return int(np.rint(epoch_seconds * 1e6))


def iso_time(epoch_seconds: float) -> str:
    """ISO-8601 UTC text (``...Z``) of epoch seconds; a time the calendar cannot show (a
    stored value from before the store checked times, NaN) is shown as epoch seconds, so a
    message about a bad row never fails itself."""
    try:
        text = datetime.fromtimestamp(epoch_seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{epoch_seconds!r} (epoch seconds)"
    return text.replace("+00:00", "Z")


def finite_numbers(document: Mapping[str, Any]) -> bool:
    """Whether every number at the top level of ``document`` is finite (JSON has no NaN or
    Infinity; a document written before the plugin checked may hold them)."""
    return all(math.isfinite(v) for v in document.values() if isinstance(v, float))


def basis_of(interactions: int, last_at: float, total_value: float) -> list[Any]:
    """What a record is computed from: the customer summary's interaction count, last
    interaction time (whole epoch microseconds) and monetary total. A corrected value alone
    (same count and times, e.g. a re-imported order with a new amount) changes the basis, so
    the stored record is computed again."""
    return [int(interactions), epoch_us(last_at), float(total_value)]


def record_document(
    customer_id: str,
    record: RfmRecord,
    computed_at: str,
    basis: list[Any],
    fingerprint: str,
) -> dict[str, Any]:
    """The stored document of one customer's record (``basis``: :func:`basis_of`)."""
    return {
        "customerId": customer_id,
        "clvScore": record.clv_score,
        "predictedRevenue": record.predicted_revenue,
        "churnProbability": record.churn_probability,
        "rfmRecency": record.recency_days,
        "rfmFrequency": record.frequency,
        "rfmMonetary": record.monetary,
        "segment": record.segment.value,
        "computedAt": computed_at,
        _BASIS: basis,
        _SETTINGS: fingerprint,
    }


def matches_basis(document: Mapping[str, Any], basis: list[Any], fp: str) -> bool:
    """Whether a stored document was computed from this summary (:func:`basis_of`) with
    settings of fingerprint ``fp``, whatever its asOf."""
    return document.get(_SETTINGS) == fp and document.get(_BASIS) == basis


def computed_as_of(document: Mapping[str, Any]) -> float | None:
    """The asOf a stored document was computed for (its ``computedAt``), epoch seconds; None
    when missing or not an ISO time."""
    text = document.get("computedAt")
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def is_current(
    document: Mapping[str, Any],
    basis: list[Any],
    fp: str,
    *,
    as_of: float,
    max_age: float | None = None,
) -> bool:
    """Whether a stored document answers a read as of ``as_of``.

    It must match the summary and settings (:func:`matches_basis`), hold only finite numbers,
    and its asOf must fit the read: for an explicit asOf (``max_age`` None) exactly ``as_of``
    (to the microsecond); for a read "as of now" (``as_of`` is now, ``max_age`` the tenant's
    ``recordMaxAgeSeconds``) at most ``max_age`` seconds before ``as_of`` and not after it, so
    a stored record ages out and recency keeps counting for a customer who stops buying.
    """
    if not matches_basis(document, basis, fp) or not finite_numbers(document):
        return False
    computed = computed_as_of(document)
    if computed is None:
        return False
    if max_age is None:
        return epoch_us(computed) == epoch_us(as_of)
    age = as_of - computed
    return 0.0 <= age < max_age


def public_record(document: Mapping[str, Any], source: Source) -> dict[str, Any]:
    """The served JSON record: exactly :data:`RECORD_FIELDS`."""
    out = {name: document[name] for name in RECORD_FIELDS[:-1]}
    out["source"] = source
    return out


def _record_template(computed_at: str, fingerprint: str) -> str:
    """A %-template of a stored document with the batch constants filled in; %r of a Python
    int or finite float is exactly the JSON number ``json.dumps`` writes."""

    def constant(text: str) -> str:
        return encode_json_string(text).replace("%", "%%")

    return (
        '{"customerId":%s,"clvScore":%r,"predictedRevenue":%r,"churnProbability":%r,'
        '"rfmRecency":%r,"rfmFrequency":%r,"rfmMonetary":%r,"segment":%s,'
        f'"computedAt":{constant(computed_at)},"{_BASIS}":[%r,%r,%r],'
        f'"{_SETTINGS}":{constant(fingerprint)}}}'
    )


class BatchDocuments(Mapping[str, dict[str, Any]]):
    """The stored documents of a batch, built lazily while the store writes them.

    Avoids holding a million dicts at once; ``progress(done, total)`` is called every
    ``step`` documents as the store consumes them (and once at the end). An exception raised by
    ``progress`` aborts the write, and the store's transaction leaves the old records intact.
    """

    def __init__(
        self,
        customer_ids: list[str],
        batch: RfmBatch,
        rows: list[int],
        last_at: NDArray[np.float64],
        total_value: NDArray[np.float64],
        computed_at: str,
        fingerprint: str,
        progress: Callable[[int, int], None] | None = None,
        step: int = 10_000,
    ) -> None:
        self._ids = customer_ids
        self._rows = rows
        self._index = {customer_ids[i]: i for i in rows} if len(rows) < 1024 else None
        self._score = batch.clv_score.tolist()
        self._revenue = batch.predicted_revenue.tolist()
        self._churn = batch.churn_probability.tolist()
        self._recency = batch.recency_days.tolist()
        self._frequency = batch.frequency.tolist()
        self._monetary = batch.monetary.tolist()
        self._segment = batch.segments().tolist()
        self._last_us = np.rint(np.asarray(last_at) * 1e6).astype(np.int64).tolist()
        self._total = np.asarray(total_value, dtype=np.float64).tolist()
        self._computed_at = computed_at
        self._fp = fingerprint
        self._progress = progress
        self._step = step

    def _doc(self, i: int) -> dict[str, Any]:
        return {
            "customerId": self._ids[i],
            "clvScore": self._score[i],
            "predictedRevenue": self._revenue[i],
            "churnProbability": self._churn[i],
            "rfmRecency": self._recency[i],
            "rfmFrequency": self._frequency[i],
            "rfmMonetary": self._monetary[i],
            "segment": self._segment[i],
            "computedAt": self._computed_at,
            _BASIS: [self._frequency[i], self._last_us[i], self._total[i]],
            _SETTINGS: self._fp,
        }

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[str]:
        return (self._ids[i] for i in self._rows)

    def __getitem__(self, key: str) -> dict[str, Any]:
        index = self._index
        if index is None:
            index = self._index = {self._ids[i]: i for i in self._rows}
        return self._doc(index[key])

    def key_list(self) -> list[str]:
        """The keys (customer ids) in write order."""
        if len(self._rows) == len(self._ids):
            return self._ids
        return [self._ids[i] for i in self._rows]

    def json_texts(self) -> Iterator[str]:
        """The documents as compact JSON text, in :meth:`key_list` order, equal to what
        ``json.dumps(doc, separators=(",", ":"), ensure_ascii=False)`` gives for each (one
        %-template per row instead of a generic encoder walking a dict). Progress is reported
        like :meth:`items`.

        Raises:
            InvalidInputError: a computed number is NaN or infinite (not JSON).
        """
        rows = self._rows
        every = len(rows) == len(self._ids)
        floats = (self._revenue, self._churn, self._monetary)
        for values in floats:
            picked = np.asarray(values if every else [values[i] for i in rows], dtype=float)
            bad = np.flatnonzero(~np.isfinite(picked))
            if len(bad):
                customer = self._ids[rows[int(bad[0])]]
                raise InvalidInputError(
                    f"the CLV record of {customer!r} has a NaN or infinite number: check the "
                    "customer's summary values"
                )
        template = _record_template(self._computed_at, self._fp)
        names = {name: encode_json_string(name) for name in set(self._segment)}
        total = len(rows)
        progress, step = self._progress, self._step
        for start in range(0, total, step):
            part = rows[start : start + step]

            def pick(column: list[Any], part: list[int] = part, start: int = start) -> list[Any]:
                return column[start : start + len(part)] if every else [column[i] for i in part]

            columns = [
                map(encode_json_string, pick(self._ids)),
                pick(self._score),
                pick(self._revenue),
                pick(self._churn),
                pick(self._recency),
                pick(self._frequency),
                pick(self._monetary),
                [names[name] for name in pick(self._segment)],
                pick(self._frequency),
                pick(self._last_us),
                pick(self._total),
            ]
            yield from map(template.__mod__, zip(*columns, strict=True))
            if progress is not None:
                progress(start + len(part), total)

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:  # type: ignore[override]
        total = len(self._rows)
        progress, step = self._progress, self._step
        for done, i in enumerate(self._rows, 1):
            yield self._ids[i], self._doc(i)
            if progress is not None and (done % step == 0 or done == total):
                progress(done, total)


#: Fields a probabilistic model adds to a served record (see
#: ``nextbest_clv.service.model_records``).
MODEL_FIELDS: tuple[str, ...] = (
    "probabilityAlive",
    "expectedPurchases90d",
    "expectedRevenue12m",
    "clv",
    "expectedNextPurchaseAt",
    "clvPercentile",
    "model",
)


def served_record(document: Mapping[str, Any], source: Source) -> dict[str, Any]:
    """:func:`public_record` followed by the probabilistic model's fields when the document
    has them (a tenant whose ``model`` is not ``rfm``)."""
    out = public_record(document, source)
    if "model" in document:
        out.update({name: document.get(name) for name in MODEL_FIELDS})
    return out
