"""``ingest_file``: one file into a tenant's history, in chunks, with a report of every row that
was rejected (line and reason) and, optionally, a reject file."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import IO, Any

from nextbest.ingest.files import (
    FORMATS,
    Format,
    IngestError,
    Lines,
    Row,
    check_encoding,
    csv_rows,
    default_delimiter,
    default_source,
    detect_format,
    inspect_file,
    open_text,
    parquet_columns,
    parquet_rows,
    parse_delimiter,
    whitespace_rows,
)
from nextbest.ingest.rows import (
    DECIMALS,
    ID_KEY_PREFIX,
    NEGATIVE_VALUES,
    Column,
    ContentKeys,
    NegativeValues,
    Reject,
    RowParser,
    Times,
    first_time_cell,
    looks_like_data,
    looks_like_header,
    resolve_columns,
    shown,
)
from nextbest.store import InteractionIn, Store, TenantExistsError, TenantNotFoundError

#: How many rows are read ahead, at most, to find the first two rows of a file without header.
_PEEK_ROWS = 1_000


@dataclass(frozen=True, slots=True)
class RowError:
    """A rejected row: its line in the file (row number for Parquet, header excluded) and why."""

    line: int
    reason: str


@dataclass(slots=True)
class IngestReport:
    """What an import did: rows read (blank lines excluded), newly stored, already stored with
    the same content (duplicates, e.g. a re-run), replaced (an id-keyed row whose stored event
    had other content: the summaries were recomputed), rejected rows, store transactions used,
    the SHA-256 of the (decompressed) content, the source name the content keys were made from,
    whether the tenant was created, and the customers whose rows were stored, replaced or found
    stored already (for ``Host.notify_interactions_imported``)."""

    rows_read: int = 0
    stored: int = 0
    duplicates: int = 0
    replaced: int = 0
    failed: list[RowError] = field(default_factory=list)
    chunks: int = 0
    file_hash: str = ""
    source: str = ""
    tenant_created: bool = False
    customers: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        """True when no row was rejected."""
        return not self.failed


class _Rejects:
    """Writes rejected rows as CSV: line, reason, then the row's original fields (bytes that
    were not in the file's encoding written back as they were). The file is opened at once, so
    a path that cannot be written is an IngestError before anything is stored."""

    def __init__(self, path: Path | None, source: Path, header: Sequence[str] | None) -> None:
        self._header = header
        self._handle: IO[str] | None = None
        self._writer: Any = None
        if path is None:
            return
        if path.exists() and path.resolve() == source.resolve():
            raise IngestError(f"the reject file {path} is the file being imported")
        try:
            self._handle = open(  # noqa: SIM115 - closed in close()
                path, "w", encoding="utf-8", errors="surrogateescape", newline=""
            )
        except OSError as exc:
            raise IngestError(f"cannot write the reject file {path}: {exc.strerror}") from None

    def write(self, line: int, reason: str, fields: Sequence[Any]) -> None:
        if self._handle is None:
            return
        if self._writer is None:
            self._writer = csv.writer(self._handle)
            names = self._header or [f"field{i}" for i in range(1, len(fields) + 1)]
            self._writer.writerow(["line", "reason", *names])
        self._writer.writerow([line, reason, *("" if f is None else f for f in fields)])

    def close(self) -> None:
        if self._handle is None:
            return
        if self._writer is None:
            # An empty reject file (header only) says "nothing was rejected" unambiguously.
            csv.writer(self._handle).writerow(["line", "reason", *(self._header or [])])
        self._handle.close()


@dataclass(slots=True)
class _Layout:
    """Where a file's rows come from and how they are laid out."""

    rows: Iterator[Row]
    header: list[str] | None  # the column names (for Parquet: of the columns read)
    header_line: int  # the header's line (0: none)
    columns: dict[str, int | None]  # role -> index into a row's fields
    expected: int | None  # fields per row (text formats)
    reference: str  # what set ``expected``
    total: int  # lines (rows for Parquet), for progress


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
    id_col: Column | None = None,
    timestamp_format: str | None = None,
    outcome: str = "conversion",
    delimiter: str | None = None,
    decimal: str = ".",
    encoding: str = "utf-8",
    negative_values: NegativeValues | None = None,
    create_tenant: bool = False,
    reject_file: str | os.PathLike[str] | None = None,
    source: str | None = None,
    chunk_size: int = 200_000,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> IngestReport:
    """Import an interaction file into ``tenant_id``'s history.

    Columns are given by header name or 1-based position; by default the header names
    ``customer_id``, ``timestamp`` (required) and ``value``, ``outcome``, ``offer_id``,
    ``channel`` (used when present) are looked up. Every row must have as many fields as the
    header (without one, as the first row). A first line read as a header that looks like data
    (its time cell is a time, its value cell a number) is an IngestError suggesting
    ``header=False``, and so is a first line read as data that is clearly a header.

    Times are ISO-8601 unless ``timestamp_format`` (strptime) is given; times without a zone
    are UTC; a time outside the store's window or more than ``MAX_FUTURE_SKEW`` ahead is a
    rejected row. Values use ``decimal`` (``.`` or ``,``) and no thousands separator; an empty
    value is 0. Without an outcome column every row gets ``outcome``. A negative value on a row
    of that outcome is recorded as a ``refund`` when ``negative_values`` is ``"refund"`` (the
    default when the file has no outcome column) and rejected when it is ``"reject"`` (the
    default with an outcome column). ``delimiter`` (one character) reads the file as CSV;
    ``encoding`` names its text encoding (default UTF-8, a byte order mark skipped).

    Keys: without ``id_col`` a row's idempotency key is made of ``source`` (default
    :func:`default_source`), its normalised content and its occurrence number among identical
    rows, so re-importing a file (or an edited copy under the same source) adds only new rows.
    With ``id_col`` it is ``ingest:id:<outcome>:<id>``: the same id and outcome in any later
    file is the same event, recorded again with other content it replaces the stored one (the
    summaries recomputed; counted in ``replaced``); a second row with the same id and outcome
    in one file is rejected. A row missing from a later export is not deleted.

    Rows that cannot be used are reported in ``failed`` with their line and reason (and in
    ``reject_file``); the others are stored, ``chunk_size`` rows per transaction. A problem
    with the file or the options is an IngestError before anything is stored. The tenant must
    exist unless ``create_tenant``. ``on_start(total)`` is called once with the number of
    lines (rows for Parquet) and ``progress(n)`` after each stored chunk with the lines it
    covered.
    """
    file = Path(path)
    if not file.is_file():
        raise IngestError(f"{file} is not a file")
    source_name = default_source(file) if source is None else source.strip()
    if not source_name:
        raise IngestError("--source must not be empty: name where the rows come from")
    if decimal not in DECIMALS:
        raise IngestError(f"--decimal {decimal!r} must be '.' or ','")
    if negative_values is not None and negative_values not in NEGATIVE_VALUES:
        raise IngestError(
            f"--negative-values {negative_values!r} must be one of {', '.join(NEGATIVE_VALUES)}"
        )
    fmt, separator = _format_and_delimiter(file, format, delimiter)
    codec = check_encoding(encoding)
    if fmt == "parquet" and not header:
        raise IngestError("--no-header does not apply to Parquet: its columns are named")
    if fmt == "parquet" and codec != "utf-8-sig":
        raise IngestError("--encoding applies to text files, not Parquet")
    facts = inspect_file(file, fmt, codec)
    report = IngestReport(file_hash=facts.sha256, source=source_name)
    requested: dict[str, Column | None] = {
        "customer": customer_col,
        "timestamp": timestamp_col,
        "value": value_col,
        "outcome": outcome_col,
        "offer": offer_col,
        "channel": channel_col,
        "id": id_col,
    }
    times = Times(timestamp_format, time.time())
    handle: IO[str] | None = None
    rejects: _Rejects | None = None
    try:
        if fmt == "parquet":
            layout = _parquet_layout(file, requested)
        else:
            handle = open_text(file, facts.compressed, codec)
            lines = Lines(handle, codec)
            rows = csv_rows(lines, separator) if fmt == "csv" else whitespace_rows(lines)
            layout = _text_layout(rows, requested, header, times, decimal, facts.lines)
        rejects = _Rejects(None if reject_file is None else Path(reject_file), file, layout.header)
        _require_tenant(store, tenant_id, create_tenant, report)
        columns = layout.columns
        id_index = columns["id"]
        id_label = "id"
        if id_index is not None:
            id_label = layout.header[id_index] if layout.header else f"id (field {id_index + 1})"
        if negative_values is None:
            negative_values = "refund" if columns["outcome"] is None else "reject"
        parser = RowParser(
            store,
            tenant_id,
            columns,
            times,
            decimal=decimal,
            purchase=outcome,
            negative_refunds=negative_values == "refund",
            expected=layout.expected,
            reference=layout.reference,
            content_keys=ContentKeys(source_name),
            id_label=id_label,
        )
        if on_start is not None:
            on_start(layout.total)
        _import_rows(
            store, tenant_id, layout, parser, rejects, report, id_label, chunk_size, progress
        )
    finally:
        if rejects is not None:
            rejects.close()
        if handle is not None:
            handle.close()
    return report


def _format_and_delimiter(
    file: Path, format: Format | None, delimiter: str | None
) -> tuple[Format, str]:
    fmt: Format = format or detect_format(file)
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if delimiter is None:
        return fmt, default_delimiter(file)
    separator = parse_delimiter(delimiter)
    if fmt == "parquet":
        raise IngestError("--delimiter applies to text files, not Parquet")
    if fmt == "whitespace":
        if format is not None:
            raise IngestError(
                "--delimiter does not apply to --format whitespace (fields separated by any run "
                "of spaces and tabs): leave out --format to read the file as CSV"
            )
        fmt = "csv"  # a .txt file with a delimiter is CSV
    return fmt, separator


def _require_tenant(store: Store, tenant_id: str, create: bool, report: IngestReport) -> None:
    if store.get_tenant(tenant_id) is not None:
        return
    if not create:
        raise TenantNotFoundError(
            f"tenant {tenant_id!r} does not exist: create it with `nextbest tenants create "
            f"{tenant_id}`, or import with --create-tenant"
        )
    with suppress(TenantExistsError):  # created meanwhile by another process: use it
        store.create_tenant(tenant_id)
        report.tenant_created = True


def _parquet_layout(file: Path, requested: dict[str, Column | None]) -> _Layout:
    names, total = parquet_columns(file)
    columns = resolve_columns(requested, names, None)
    used = sorted({index for index in columns.values() if index is not None})
    position = {index: place for place, index in enumerate(used)}
    return _Layout(
        rows=parquet_rows(file, used),
        header=[names[index] for index in used],
        header_line=0,
        columns={role: None if i is None else position[i] for role, i in columns.items()},
        expected=None,
        reference="",
        total=total,
    )


def _text_layout(
    rows: Iterator[Row],
    requested: dict[str, Column | None],
    header: bool,
    times: Times,
    decimal: str,
    total: int,
) -> _Layout:
    """The header (or the first rows without one) checked against the column options."""
    if header:
        first = next(rows, None)
        if first is None:
            raise IngestError("the file is empty: it has not even a header line")
        line, cells, problem = first
        if problem is not None or cells is None:
            raise IngestError(f"the header (line {line}) cannot be read: {problem}")
        names = [str(cell).strip() for cell in cells]
        try:
            columns = resolve_columns(requested, names, None)
        except IngestError as exc:
            data = first_time_cell(names, times)
            if data is not None:
                raise IngestError(_header_is_data(line, data)) from exc
            other = _other_delimiter(names)
            if other is None:
                raise
            raise IngestError(
                f"{exc}. The header is one field: if the file is separated by {other!r}, pass "
                f"--delimiter {other!r}"
            ) from None
        data = looks_like_data(names, columns, times, decimal)
        if data is not None:
            raise IngestError(_header_is_data(line, data))
        return _Layout(rows, names, line, columns, len(names), "the header", total)

    peeked: list[Row] = []
    good: list[Row] = []
    for row in rows:
        peeked.append(row)
        if row[1] is not None and row[2] is None:
            good.append(row)
        if len(good) == 2 or len(peeked) >= _PEEK_ROWS:
            break
    width = len(good[0][1]) if good and good[0][1] is not None else None
    columns = resolve_columns(requested, None, width)
    if len(good) == 2:
        (line, cells, _), (second_line, second, _) = good
        assert cells is not None and second is not None
        if looks_like_header(cells, second, columns, times, decimal):
            index = columns["timestamp"]
            assert index is not None
            raise IngestError(
                f"line {line} looks like a header, not data: its time column holds "
                f"{shown(str(cells[index]).strip())}, line {second_line} a time. Leave out "
                "--no-header (the columns can then be given by name)"
            )
    reference = f"line {good[0][0]}" if good else ""
    return _Layout(chain(peeked, rows), None, 0, columns, width, reference, total)


def _other_delimiter(names: list[str]) -> str | None:
    """The delimiter a header of one field seems to be separated by, if any."""
    if len(names) != 1:
        return None
    return next((char for char in ";\t|," if char in names[0]), None)


def _header_is_data(line: int, why: str) -> str:
    return (
        f"line {line} is read as the header but looks like data ({why}): if the file has no "
        "header, pass --no-header and give the columns by position (--customer-col N ...)"
    )


def _import_rows(
    store: Store,
    tenant_id: str,
    layout: _Layout,
    parser: RowParser,
    rejects: _Rejects,
    report: IngestReport,
    id_label: str,
    chunk_size: int,
    progress: Callable[[int], None] | None,
) -> None:
    chunk: list[InteractionIn] = []
    chunk_lines: list[int] = []
    chunk_fields: list[Sequence[Any]] = []
    first_line_of: dict[str, int] = {}  # id keys seen in this file
    by_id = parser.by_id
    reported_line = layout.header_line

    def reject(line: int, reason: str, fields: Sequence[Any] | None) -> None:
        report.failed.append(RowError(line, reason))
        rejects.write(line, reason, () if fields is None else fields)

    def flush(last_line: int) -> None:
        nonlocal reported_line
        if chunk:
            result = store.record_interactions_bulk(
                tenant_id, chunk, chunk_size=len(chunk), replace=by_id
            )
            report.stored += result.inserted
            report.duplicates += result.duplicates
            report.replaced += result.replaced
            report.chunks += result.chunks
            # The parser applies the store's rules, so this is a safety net: a row the store
            # refuses is still reported with its line, and the chunk's other rows are kept.
            for rejection in result.rejected:
                reject(
                    chunk_lines[rejection.index], rejection.reason, chunk_fields[rejection.index]
                )
            refused = {rejection.index for rejection in result.rejected}
            report.customers.update(
                row.customer_id for i, row in enumerate(chunk) if i not in refused
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
    for line, fields, problem in layout.rows:
        report.rows_read += 1
        if problem is not None or fields is None:
            reject(line, problem or "the line cannot be read", fields)
            continue
        try:
            item = parser.parse(fields)
        except Reject as exc:
            reject(line, str(exc), fields)
            continue
        if by_id:
            first = first_line_of.setdefault(item.idempotency_key, line)
            if first != line:
                ident = item.idempotency_key[len(ID_KEY_PREFIX) + len(item.outcome) + 1 :]
                reject(
                    line,
                    f"{id_label} {shown(ident)} ({item.outcome}) is already on line {first}: "
                    "one row per id and outcome (sum an order's lines into one row)",
                    fields,
                )
                continue
        chunk.append(item)
        chunk_lines.append(line)
        chunk_fields.append(fields)
        if len(chunk) >= chunk_size:
            flush(line)
    flush(max(line, layout.total))


__all__ = ["IngestReport", "RowError", "ingest_file"]
