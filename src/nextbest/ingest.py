"""Bulk import of interaction (transaction) files into the store: CSV, Parquet, whitespace text.

Every row gets a deterministic idempotency key from the source name (``source``, by default the
file name without directories and ``.gz``), the row's normalised content (customer, time, value,
outcome, offer, channel) and its occurrence number among identical rows of the file. So
importing the same file again adds nothing, and so does importing it after an edit, except for
the rows the edit added or changed: fixing a rejected row and re-running stores exactly that row.
Two identical rows in one file stay two events. Rows that cannot be read (bad date, value that is
not a finite number >= 0, missing or invalid customer/offer/channel id, unknown outcome) are
reported with their line number and reason, and optionally written to a reject file; the valid
rows are stored.

Example, the CDNOW sample (whitespace separated, no header; customer id, sample id, YYYYMMDD date,
CDs, dollar value)::

    ingest_file(store, "CDNOW_sample.txt", "demo", header=False, customer_col=1,
                timestamp_col=3, value_col=5, timestamp_format="%Y%m%d")
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from nextbest.store import (
    MAX_ID_LENGTH,
    InteractionIn,
    Store,
    TenantNotFoundError,
    UnknownOutcomeError,
    id_problem,
    to_epoch,
)

Format = Literal["csv", "parquet", "whitespace"]
FORMATS: tuple[str, ...] = ("csv", "parquet", "whitespace")
#: A column by header name or by 1-based position.
Column = str | int

_EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "whitespace",
    ".tsv": "whitespace",
    ".dat": "whitespace",
}
_DEFAULT_NAMES = {
    "customer": "customer_id",
    "timestamp": "timestamp",
    "value": "value",
    "outcome": "outcome",
    "offer": "offer_id",
    "channel": "channel",
}
_REQUIRED = ("customer", "timestamp")
_HASH_BLOCK = 1 << 20
_SEP = "\x1f"  # joins a row's normalised fields for its idempotency key
_COMPRESSION_SUFFIXES = (".gz",)
# Added to epoch seconds in keys so times back to year 1 stay non-negative and sort as text.
_EPOCH_OFFSET = 62_135_596_800
_TIME_CACHE_SIZE = 200_000


class IngestError(Exception):
    """The file or the options cannot be used at all (no row was read)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A rejected row: its line in the file (row number for Parquet, header excluded) and why."""

    line: int
    reason: str


@dataclass(slots=True)
class IngestReport:
    """What an import did: rows read (blank lines excluded), newly stored, already stored
    (duplicates, e.g. a re-run), rejected rows, store transactions used, the SHA-256 of the
    (decompressed) content and the source name the idempotency keys were made from."""

    rows_read: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: list[RowError] = field(default_factory=list)
    chunks: int = 0
    file_hash: str = ""
    source: str = ""

    @property
    def ok(self) -> bool:
        """True when no row was rejected."""
        return not self.failed


class _Reject(Exception):
    """A row-level problem; the message is the reason reported."""


def detect_format(path: str | Path) -> Format:
    """The format implied by the file name (``.gz`` is looked through)."""
    name = Path(path).name.lower().removesuffix(".gz")
    suffix = Path(name).suffix
    if suffix not in _EXTENSIONS:
        raise IngestError(
            f"cannot tell the format of {Path(path).name!r} from its extension: pass --format "
            f"({', '.join(FORMATS)})"
        )
    return _EXTENSIONS[suffix]  # type: ignore[return-value]


def default_source(path: str | Path) -> str:
    """The source name of a file when none is given: its name without directories and without
    a compression suffix (``exports/CDNOW_master.txt.gz`` -> ``CDNOW_master.txt``)."""
    name = Path(path).name
    for suffix in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _open_bytes(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is binary IO
    return open(path, "rb")


def _fingerprint(path: Path) -> tuple[str, int]:
    """SHA-256 of the (decompressed) content and its number of lines."""
    digest = hashlib.sha256()
    lines = 0
    last = b"\n"
    with _open_bytes(path) as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
    return digest.hexdigest(), lines + (last != b"\n")


def _text_rows(path: Path, fmt: Format) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank line."""
    with _open_text(path) as handle:
        if fmt == "csv":
            reader = csv.reader(handle)
            for fields in reader:
                if fields and any(fields):
                    yield reader.line_num, fields
        else:
            for number, line in enumerate(handle, 1):
                fields = line.split()
                if fields:
                    yield number, fields


def _parquet_rows(path: Path) -> tuple[list[str], int, Iterator[tuple[int, list[Any]]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is in the dev extra
        raise IngestError("reading Parquet needs pyarrow: pip install 'nextbest[parquet]'") from exc
    parquet = pq.ParquetFile(path)
    names = list(parquet.schema_arrow.names)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        number = 0
        for batch in parquet.iter_batches(batch_size=65_536):
            columns = [column.to_pylist() for column in batch.columns]
            for values in zip(*columns, strict=True):
                number += 1
                yield number, list(values)

    return names, parquet.metadata.num_rows, rows()


def _resolve_columns(
    requested: dict[str, Column | None], header: Sequence[str] | None
) -> dict[str, int | None]:
    """Map each logical column to a 0-based index (None when absent and optional)."""
    resolved: dict[str, int | None] = {}
    for role, column in requested.items():
        if column is None:
            if header is None:
                if role in _REQUIRED:
                    raise IngestError(
                        f"without a header, give the {role} column by position "
                        f"(--{role}-col N, 1-based)"
                    )
                resolved[role] = None
                continue
            default = _DEFAULT_NAMES[role]
            if default in header:
                resolved[role] = list(header).index(default)
            elif role in _REQUIRED:
                raise IngestError(
                    f"no {default!r} column in the header {list(header)}: pass --{role}-col"
                )
            else:
                resolved[role] = None
        elif isinstance(column, int):
            if column < 1:
                raise IngestError(f"--{role}-col {column}: positions start at 1")
            if header is not None and column > len(header):
                raise IngestError(f"--{role}-col {column}: the header has {len(header)} columns")
            resolved[role] = column - 1
        else:
            if header is None:
                raise IngestError(
                    f"--{role}-col {column!r} is a name but the file has no header: "
                    "give a 1-based position"
                )
            if column not in header:
                raise IngestError(f"--{role}-col {column!r} is not in the header {list(header)}")
            resolved[role] = list(header).index(column)
    return resolved


def _check_id(what: str, text: str) -> None:
    # isprintable() (C speed) is False for every control character, so the full rule runs
    # only for the rare id that might break it.
    if len(text) > MAX_ID_LENGTH or not text.isprintable():
        problem = id_problem(text)
        if problem is not None:
            raise _Reject(f"{what} {problem}")


class _RowParser:
    """Turns raw fields into an InteractionIn, raising _Reject with the reason."""

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        columns: dict[str, int | None],
        timestamp_format: str | None,
        default_outcome: str,
    ) -> None:
        self._store = store
        self._tenant = tenant_id
        self._columns = columns
        self._format = timestamp_format
        self._default_outcome = default_outcome
        self._times: dict[Any, tuple[datetime, float]] = {}
        self._outcomes: dict[str, str | None] = {}  # name -> None when valid, else reason
        self.width = max(i for i in columns.values() if i is not None) + 1

    def timestamp(self, raw: Any) -> tuple[datetime, float]:
        """The time and its epoch seconds (cached by raw value: files repeat dates a lot)."""
        cached = self._times.get(raw)
        if cached is not None:
            return cached
        if isinstance(raw, datetime):
            value = raw
        elif raw is None or not str(raw).strip():
            raise _Reject("missing timestamp")
        else:
            text = str(raw).strip()
            try:
                if self._format is None:
                    value = datetime.fromisoformat(text)
                else:
                    value = datetime.strptime(text, self._format)
            except ValueError:
                expected = self._format or "ISO-8601"
                raise _Reject(f"bad timestamp {text!r} (expected {expected})") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if len(self._times) >= _TIME_CACHE_SIZE:
            self._times.clear()
        parsed = self._times[raw] = (value, to_epoch(value))
        return parsed

    @staticmethod
    def value(raw: Any) -> float:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return 0.0
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise _Reject(f"value {raw!r} is not a number") from None
        if not math.isfinite(number):
            raise _Reject(f"value {raw!r} is not finite")
        if number < 0:
            raise _Reject(f"value {raw!r} is negative")
        return number

    def outcome(self, raw: Any) -> str:
        name = self._default_outcome if raw is None else str(raw).strip() or self._default_outcome
        if name not in self._outcomes:
            try:
                self._store.resolve_outcome_type(self._tenant, name)
                self._outcomes[name] = None
            except UnknownOutcomeError:
                self._outcomes[name] = f"unknown outcome {name!r}"
        problem = self._outcomes[name]
        if problem is not None:
            raise _Reject(problem)
        return name

    @staticmethod
    def optional_id(what: str, raw: Any) -> str | None:
        """An optional id column: empty means none; otherwise the store's id rules apply."""
        if raw is None:
            return None
        text = str(raw).strip()
        if not text:
            return None
        _check_id(what, text)
        return text

    def parse(self, fields: Sequence[Any], key_for: Callable[[float, str], str]) -> InteractionIn:
        """The row as an interaction; ``key_for(epoch, normalised content)`` gives its key."""
        if len(fields) < self.width:
            raise _Reject(f"expected at least {self.width} fields, found {len(fields)}")
        c = self._columns
        customer = fields[c["customer"]]  # type: ignore[index]
        customer = "" if customer is None else str(customer).strip()
        if not customer:
            raise _Reject("missing customer id")
        if len(customer) > MAX_ID_LENGTH or not customer.isprintable():
            _check_id("customer id", customer)
        occurred, epoch = self.timestamp(fields[c["timestamp"]])  # type: ignore[index]
        value = 0.0 if c["value"] is None else self.value(fields[c["value"]])
        outcome = self.outcome(None if c["outcome"] is None else fields[c["outcome"]])
        offer = None if c["offer"] is None else self.optional_id("offer id", fields[c["offer"]])
        channel = (
            None if c["channel"] is None else self.optional_id("channel", fields[c["channel"]])
        )
        # What identifies the event, independent of formatting ("10.50" = "10.5") and position.
        content = _SEP.join(
            (customer, repr(epoch), repr(value), outcome, offer or "", channel or "")
        )
        return InteractionIn(
            customer_id=customer,
            outcome=outcome,
            idempotency_key=key_for(epoch, content),
            offer_id=offer,
            channel=channel,
            value=value,
            occurred_at=occurred,
        )


class _Rejects:
    """Writes rejected rows as CSV: line, reason, then the row's original fields."""

    def __init__(self, path: Path | None, header: Sequence[str] | None) -> None:
        self._path = path
        self._header = header
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def write(self, line: int, reason: str, fields: Sequence[Any]) -> None:
        if self._path is None:
            return
        if self._writer is None:
            self._handle = open(self._path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._handle)
            names = self._header or [f"field{i}" for i in range(1, len(fields) + 1)]
            self._writer.writerow(["line", "reason", *names])
        self._writer.writerow([line, reason, *("" if f is None else f for f in fields)])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        elif self._path is not None:
            # An empty reject file (header only) says "nothing was rejected" unambiguously.
            with open(self._path, "w", encoding="utf-8", newline="") as handle:
                csv.writer(handle).writerow(["line", "reason", *(self._header or [])])


def ingest_file(
    store: Store,
    path: str | os.PathLike[str],
    tenant_id: str,
    *,
    format: Format | None = None,
    header: bool = True,
    customer_col: Column | None = None,
    timestamp_col: Column | None = None,
    value_col: Column | None = None,
    outcome_col: Column | None = None,
    offer_col: Column | None = None,
    channel_col: Column | None = None,
    timestamp_format: str | None = None,
    outcome: str = "conversion",
    reject_file: str | os.PathLike[str] | None = None,
    source: str | None = None,
    chunk_size: int = 200_000,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> IngestReport:
    """Import an interaction file into ``tenant_id``'s history.

    Columns are given by header name or 1-based position; by default the header names
    ``customer_id``, ``timestamp`` (required) and ``value``, ``outcome``, ``offer_id``,
    ``channel`` (used when present) are looked up. Times are ISO-8601 unless
    ``timestamp_format`` (strptime) is given; times without a zone are UTC. An empty value is 0.
    Without an outcome column every row gets ``outcome``. ``source`` names where the rows come
    from for their idempotency keys (default :func:`default_source`): give the same name to
    re-import a renamed or edited copy without double counting, a different one to import
    identical rows as new events. ``on_start(total)`` is called once with
    the number of lines (rows for Parquet) and ``progress(n)`` after each stored chunk with the
    lines it covered. Each chunk of ``chunk_size`` rows is stored in one transaction.
    """
    file = Path(path)
    if not file.is_file():
        raise IngestError(f"{file} is not a file")
    source_name = default_source(file) if source is None else source.strip()
    if not source_name:
        raise IngestError("--source must not be empty: name where the rows come from")
    fmt: Format = format or detect_format(file)
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if store.get_tenant(tenant_id) is None:
        raise TenantNotFoundError(
            f"tenant {tenant_id!r} does not exist: create it with `nextbest tenants create`"
        )
    requested: dict[str, Column | None] = {
        "customer": customer_col,
        "timestamp": timestamp_col,
        "value": value_col,
        "outcome": outcome_col,
        "offer": offer_col,
        "channel": channel_col,
    }

    header_names: list[str] | None
    rows: Iterator[tuple[int, Sequence[Any]]]
    if fmt == "parquet":
        header_names, total, rows = _parquet_rows(file)
        with open(file, "rb") as handle:
            file_hash = hashlib.file_digest(handle, "sha256").hexdigest()
    else:
        file_hash, total = _fingerprint(file)
        rows = _text_rows(file, fmt)
        header_names = None
        if header:
            first = next(rows, None)
            header_names = [name.strip() for name in first[1]] if first else []
    report = IngestReport(file_hash=file_hash, source=source_name)
    if on_start is not None:
        on_start(total)
    columns = _resolve_columns(requested, header_names)
    parser = _RowParser(store, tenant_id, columns, timestamp_format, outcome)
    rejects = _Rejects(None if reject_file is None else Path(reject_file), header_names)
    # The key survives edits of the file: source identity, the row's normalised content and
    # its occurrence number among identical rows (no line number, no file hash). The event's
    # time leads the content digest so the keys of a time-ordered file (the usual export) grow
    # in order and the store's unique index is appended to, not rewritten at random places.
    key_prefix = "ingest:" + hashlib.sha256(source_name.encode()).hexdigest()[:12] + ":"
    occurrences: dict[bytes, int] = {}

    def key_for(epoch: float, content: str) -> str:
        # 64 bits suffice: only rows of the same source and the same second could collide.
        digest = hashlib.blake2b(content.encode(), digest_size=8).digest()
        seen = occurrences.get(digest, 0)
        occurrences[digest] = seen + 1
        return f"{key_prefix}{int(epoch) + _EPOCH_OFFSET:012d}:{digest.hex()}:{seen}"

    chunk: list[InteractionIn] = []
    chunk_lines: list[int] = []
    chunk_fields: list[Sequence[Any]] = []
    reported_line = 1 if header_names is not None and fmt != "parquet" else 0

    def reject(line: int, reason: str, fields: Sequence[Any]) -> None:
        report.failed.append(RowError(line, reason))
        rejects.write(line, reason, fields)

    def flush(last_line: int) -> None:
        nonlocal reported_line
        if chunk:
            result = store.record_interactions_bulk(tenant_id, chunk, chunk_size=len(chunk))
            report.stored += result.inserted
            report.duplicates += result.duplicates
            report.chunks += result.chunks
            # The parser applies the store's rules, so this is a safety net: a row the store
            # refuses is still reported with its line, and the chunk's other rows are kept.
            for rejection in result.rejected:
                reject(
                    chunk_lines[rejection.index], rejection.reason, chunk_fields[rejection.index]
                )
            if result.rejected:
                report.failed.sort(key=lambda error: error.line)
            chunk.clear()
            chunk_lines.clear()
            chunk_fields.clear()
        if progress is not None and last_line > reported_line:
            progress(last_line - reported_line)
        reported_line = last_line

    line = reported_line
    try:
        for line, fields in rows:
            report.rows_read += 1
            try:
                chunk.append(parser.parse(fields, key_for))
            except _Reject as problem:
                reject(line, str(problem), fields)
                continue
            chunk_lines.append(line)
            chunk_fields.append(fields)
            if len(chunk) >= chunk_size:
                flush(line)
        flush(max(line, total))
    finally:
        rejects.close()
    return report


__all__ = [
    "FORMATS",
    "Column",
    "Format",
    "IngestError",
    "IngestReport",
    "RowError",
    "default_source",
    "detect_format",
    "ingest_file",
]
