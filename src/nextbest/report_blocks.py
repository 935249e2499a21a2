"""What a report page returns: structured blocks, never HTML (docs/report.md).

A page's render callable (``ReportPage.render``, registered with ``register_report_pages``)
returns a sequence of these blocks; the host renders them to HTML (Jinja2, autoescaped) and
charts with Plotly, in the browser (``/ui/``) and in the offline export. Every block checks its
own shape when it is built and raises ``ValueError`` naming the field, so a plugin's mistake
shows where it was made, not as a broken page.

- :class:`Stats`: a row of :class:`Stat` figures (label, value, unit).
- :class:`Chart`: ``line``, ``bar``, ``histogram``, ``heatmap`` or ``band`` over
  :class:`Series`, with a title and :class:`Axis` labels with units.
- :class:`Table`: :class:`Column` headers and rows; sortable and paginated through query
  parameters read with ``PageRequest.table`` (:class:`TableQuery`), exportable as CSV.
- :class:`Text`: a paragraph or a note.
- :class:`Form`: a small GET form of :class:`FormField` (it only chooses what the page shows).
- :class:`Section`: a titled group of blocks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

ChartKind = Literal["line", "bar", "histogram", "heatmap", "band"]
CHART_KINDS: tuple[str, ...] = ("line", "bar", "histogram", "heatmap", "band")
FieldKind = Literal["select", "text", "number", "date"]
TextKind = Literal["paragraph", "note"]

#: Ids of tables and names of form fields: they become query parameters and HTML ids.
_ID = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

#: A table cell's or stat's value; times are shown in UTC.
Scalar = str | int | float | bool | datetime | date | None


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-40 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter"
        )


def _finite_or_none(values: Sequence[Any], what: str) -> None:
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{what}[{i}] must be a number or None, not {type(v).__name__}")
        if not math.isfinite(v):
            raise ValueError(f"{what}[{i}] must be finite")


@dataclass(frozen=True, slots=True)
class Stat:
    """One figure: ``label``, ``value`` (a number, text or None for "no data") and ``unit``."""

    label: str
    value: Scalar
    unit: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise ValueError(f"stat {self.label!r}: value must be finite")


@dataclass(frozen=True, slots=True)
class Stats:
    """A row of figures under an optional title."""

    items: Sequence[Stat]
    title: str = ""


@dataclass(frozen=True, slots=True)
class Axis:
    """An axis: its ``label`` and ``unit`` (shown as "label (unit)")."""

    label: str
    unit: str = ""

    @property
    def text(self) -> str:
        """The label with its unit, as the chart shows it."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a chart.

    ``line``/``bar``: ``x`` and ``y`` of one length. ``histogram``: ``x`` holds the bin edges
    (one more than ``y``, the counts). ``band``: ``y`` is the middle line and ``lower`` /
    ``upper`` the band around it, all as long as ``x``. ``heatmap``: ``x`` the columns, ``y``
    the rows, ``z`` one list per row of ``len(x)`` numbers.
    """

    name: str
    x: Sequence[Any]
    y: Sequence[Any]
    lower: Sequence[float | None] | None = None
    upper: Sequence[float | None] | None = None
    z: Sequence[Sequence[float | None]] | None = None


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart: ``kind``, ``title``, axes with units and its series (see :class:`Series`).
    ``z`` names the colour scale of a heatmap."""

    kind: ChartKind
    title: str
    x: Axis
    y: Axis
    series: Sequence[Series]
    z: Axis | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CHART_KINDS:
            raise ValueError(f"chart {self.title!r}: kind must be one of {', '.join(CHART_KINDS)}")
        if not self.title.strip():
            raise ValueError("chart: title is required")
        if not self.x.label.strip() or not self.y.label.strip():
            raise ValueError(f"chart {self.title!r}: both axes need a label")
        for s in self.series:
            self._check_series(s)

    def _check_series(self, s: Series) -> None:
        where = f"chart {self.title!r}, series {s.name!r}"
        if self.kind == "histogram":
            if len(s.x) != len(s.y) + 1:
                raise ValueError(f"{where}: x holds the bin edges, one more than y")
            _finite_or_none(s.x, f"{where}: x")
            _finite_or_none(s.y, f"{where}: y")
        elif self.kind == "heatmap":
            if s.z is None or len(s.z) != len(s.y) or any(len(row) != len(s.x) for row in s.z):
                raise ValueError(f"{where}: z needs one row per y of len(x) numbers")
            for i, row in enumerate(s.z):
                _finite_or_none(row, f"{where}: z[{i}]")
        else:
            if len(s.x) != len(s.y):
                raise ValueError(f"{where}: x and y must have the same length")
            _finite_or_none(s.y, f"{where}: y")
            if self.kind == "band":
                if s.lower is None or s.upper is None:
                    raise ValueError(f"{where}: a band needs lower and upper")
                if len(s.lower) != len(s.x) or len(s.upper) != len(s.x):
                    raise ValueError(f"{where}: lower and upper must be as long as x")
                _finite_or_none(s.lower, f"{where}: lower")
                _finite_or_none(s.upper, f"{where}: upper")


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: ``key`` (a query-parameter value when sortable), header ``label``,
    ``unit`` shown in the header, ``numeric`` (right-aligned), ``sortable``."""

    key: str
    label: str
    unit: str = ""
    numeric: bool = False
    sortable: bool = False


@dataclass(frozen=True, slots=True)
class TableQuery:
    """Which rows of a table a page should return: what ``PageRequest.table`` read from the
    query parameters ``<id>.sort``, ``<id>.desc`` and ``<id>.page`` (checked). For a CSV export
    it is the first ``page_size`` (the export's row limit) rows in the same order."""

    table_id: str
    sort: str
    descending: bool
    page: int
    page_size: int
    csv: bool = False

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.page_size


@dataclass(frozen=True, slots=True)
class Table:
    """An accessible table: ``caption``, ``columns`` and ``rows`` (one value per column).

    ``id`` names it in query parameters and CSV links. A paginated table passes the
    :class:`TableQuery` it answered (``query``) and ``total``, the number of rows over all
    pages; the host then renders sort links on sortable columns, pages and the CSV link."""

    id: str
    caption: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Scalar]]
    query: TableQuery | None = None
    total: int | None = None
    csv: bool = True

    def __post_init__(self) -> None:
        _check_id(self.id, "table id")
        if not self.caption.strip():
            raise ValueError(f"table {self.id!r}: caption is required")
        width = len(self.columns)
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"table {self.id!r}: row {i} has {len(row)} values, not {width}")
        if self.query is not None and self.query.table_id != self.id:
            raise ValueError(f"table {self.id!r}: query is for table {self.query.table_id!r}")


@dataclass(frozen=True, slots=True)
class Text:
    """A paragraph (``kind="paragraph"``) or a highlighted note (``kind="note"``); plain text,
    blank lines separate paragraphs."""

    body: str
    title: str = ""
    kind: TextKind = "paragraph"


@dataclass(frozen=True, slots=True)
class FormField:
    """A form field: query parameter ``name``, ``label``, ``kind`` and its current ``value``;
    a ``select`` offers ``options`` as (value, label) pairs."""

    name: str
    label: str
    kind: FieldKind = "text"
    value: str = ""
    options: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.match(
            r"^[A-Za-z][A-Za-z0-9_.-]{0,59}$", self.name
        ):
            raise ValueError(f"form field name {self.name!r} must be a query-parameter name")
        if self.kind == "select" and not self.options:
            raise ValueError(f"form field {self.name!r}: a select needs options")


@dataclass(frozen=True, slots=True)
class Form:
    """A small GET form: its fields become the page's query parameters. It chooses what the
    page shows and changes nothing (state-changing forms are the host's, CSRF-protected).
    Not shown in the offline export, which has no server to answer it."""

    fields: Sequence[FormField]
    submit: str = "Show"
    title: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A titled group of blocks (e.g. one plugin's part of a customer profile)."""

    title: str
    blocks: Sequence[Block] = field(default_factory=tuple)


Block = Stats | Chart | Table | Text | Form | Section

__all__ = [
    "CHART_KINDS",
    "Axis",
    "Block",
    "Chart",
    "ChartKind",
    "Column",
    "Form",
    "FormField",
    "Section",
    "Series",
    "Stat",
    "Stats",
    "Table",
    "TableQuery",
    "Text",
]
