"""Import of customer attributes (``nextbest ingest --customers FILE``): CSV or JSON lines.

CSV: a header row naming a customer id column (``customerId`` unless told otherwise) and one
column per attribute. A cell is a number when it is written as one (``12``, ``-0.5``,
``1e3``; a leading zero as in ``0123`` keeps it text, so codes stay codes), ``true``/``false``
are booleans, an empty cell is "not known" (not stored), anything else is text.
JSON lines: one object per line with the customer id and the attributes as its other keys
(values: strings, numbers, booleans or null).

Each row replaces the customer's stored attributes, or with ``merge`` updates only the
attributes it names. A row that cannot be used (no customer id, an invalid id or attribute,
a customer twice in the file, malformed JSON, a wrong field count) is rejected with its line
and reason; the other rows are stored, ``chunk_size`` customers per transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nextbest.ingest.files import (
    IngestError,
    Lines,
    check_encoding,
    csv_rows,
    open_text,
    parse_delimiter,
)
from nextbest.ingest.importer import RowError
from nextbest.store import Store
from nextbest.store.customer_attributes_sql import attributes_problem
from nextbest.store.limits import id_problem

CustomerFormat = Literal["csv", "jsonl"]
CUSTOMER_FORMATS: tuple[str, ...] = ("csv", "jsonl")
#: The customer id column (CSV) or key (JSON lines) unless another is named.
DEFAULT_CUSTOMER_COLUMN = "customerId"
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_GZIP_MAGIC = b"\x1f\x8b"

Parsed = tuple[int, str | None, dict[str, Any] | None, str | None]


@dataclass(slots=True)
class CustomerIngestReport:
    """What an attribute import did: rows read (blank lines excluded), customers stored,
    rejected rows (line and reason) and store transactions used."""

    rows_read: int = 0
    stored: int = 0
    failed: list[RowError] = field(default_factory=list)
    chunks: int = 0
    customers: set[str] = field(default_factory=set)


def cell_value(text: str) -> Any:
    """A CSV cell as an attribute value (see the module docstring)."""
    stripped = text.strip()
    if not stripped:
        return None
    if _NUMBER.fullmatch(stripped):
        number = float(stripped)
        if number.is_integer() and abs(number) < 2**53 and "." not in stripped:
            return int(number)
        return number
    if stripped in ("true", "false"):
        return stripped == "true"
    return text


def detect_customer_format(path: Path) -> CustomerFormat:
    """``jsonl`` for ``.jsonl``/``.ndjson``/``.json`` (``.gz`` looked through), else ``csv``."""
    suffix = Path(path.name.lower().removesuffix(".gz")).suffix
    return "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else "csv"


def ingest_customers(
    store: Store,
    file: str | Path,
    tenant_id: str,
    *,
    format: CustomerFormat | None = None,
    customer_col: str = DEFAULT_CUSTOMER_COLUMN,
    delimiter: str = ",",
    encoding: str = "utf-8",
    merge: bool = False,
    chunk_size: int = 5_000,
    progress: Callable[[int], None] | None = None,
) -> CustomerIngestReport:
    """Import the customer attributes in ``file`` for ``tenant_id`` (see the module docstring).
    IngestError when the file or the options cannot be used at all (nothing stored)."""
    path = Path(file)
    fmt = format or detect_customer_format(path)
    if fmt not in CUSTOMER_FORMATS:
        raise IngestError(f"--format {fmt!r} is not one of {', '.join(CUSTOMER_FORMATS)}")
    codec = check_encoding(encoding)
    separator = parse_delimiter(delimiter)
    with open(path, "rb") as handle:
        compressed = handle.read(2) == _GZIP_MAGIC
    report = CustomerIngestReport()
    seen: dict[str, int] = {}
    chunk: dict[str, dict[str, Any]] = {}

    def flush() -> None:
        if chunk:
            store.put_customer_attributes(tenant_id, chunk, merge=merge)
            report.stored += len(chunk)
            report.customers.update(chunk)
            report.chunks += 1
            chunk.clear()

    with open_text(path, compressed, codec) as text:
        lines = Lines(text, codec)
        rows = (
            _csv_customers(lines, separator, customer_col)
            if fmt == "csv"
            else _jsonl_customers(lines, customer_col)
        )
        for line, customer_id, attributes, problem in rows:
            report.rows_read += 1
            if problem is None and customer_id is not None and attributes is not None:
                problem = _row_problem(customer_id, attributes, seen.get(customer_id))
            if problem is not None or customer_id is None or attributes is None:
                report.failed.append(RowError(line, problem or "the row cannot be read"))
                continue
            seen[customer_id] = line
            chunk[customer_id] = attributes
            if len(chunk) >= chunk_size:
                flush()
                if progress is not None:
                    progress(lines.count)
        flush()
    return report


def _row_problem(customer_id: str, attributes: dict[str, Any], earlier: int | None) -> str | None:
    problem = id_problem(customer_id)
    if problem is not None:
        return f"customer id {problem}"
    if earlier is not None:
        return f"customer {customer_id!r} is already on line {earlier}"
    problem = attributes_problem(attributes)
    return None if problem is None else f"attributes {problem}"


def _csv_customers(lines: Lines, delimiter: str, customer_col: str) -> Iterator[Parsed]:
    rows = csv_rows(lines, delimiter)
    header: list[str] | None = None
    id_index = 0
    for line, fields, problem in rows:
        if fields is None or problem is not None:
            if header is None:
                raise IngestError(f"line {line}: the header cannot be read: {problem}")
            yield line, None, None, problem
            continue
        if header is None:
            header = [name.strip() for name in fields]
            if customer_col not in header:
                raise IngestError(
                    f"the header has no customer id column {customer_col!r} (columns: "
                    f"{', '.join(header[:10])}); name it with --customer-col"
                )
            duplicates = sorted({n for n in header if header.count(n) > 1})
            if duplicates:
                raise IngestError(f"the header names columns twice: {', '.join(duplicates)}")
            id_index = header.index(customer_col)
            continue
        if len(fields) != len(header):
            yield line, None, None, f"the row has {len(fields)} fields, the header {len(header)}"
            continue
        attributes = {
            name: cell_value(value)
            for index, (name, value) in enumerate(zip(header, fields, strict=True))
            if index != id_index
        }
        yield line, fields[id_index].strip(), attributes, None
    if header is None:
        raise IngestError("the file is empty: a header row naming the customer id column is needed")


def _jsonl_customers(lines: Lines, customer_col: str) -> Iterator[Parsed]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        problem = lines.problem(number, number)
        if problem is not None:
            yield number, None, None, problem
            continue
        try:
            row = json.loads(text)
        except ValueError as exc:
            yield number, None, None, f"the line is not JSON: {exc}"
            continue
        if not isinstance(row, dict):
            yield number, None, None, "the line must be a JSON object"
            continue
        customer_id = row.pop(customer_col, None)
        if not isinstance(customer_id, str):
            yield number, None, None, f"the object needs a string {customer_col!r}"
            continue
        yield number, customer_id, row, None
