"""Bulk import of interaction (transaction) files into the store: CSV, Parquet, whitespace text.

``files`` reads a file (formats, gzip by content, encodings, lines and their line-level
problems), ``rows`` turns fields into interactions under the store's rules (columns, header
checks, times, values and refunds, keys), ``importer`` runs an import (:func:`ingest_file`).

Nothing is stored silently wrong: a row that cannot be read exactly (more or fewer fields than
the header, bytes not in the encoding, an over-long field, a time outside the store's window or
in the future, a value out of range or of the wrong sign, an invalid id, an unknown outcome)
is rejected with its line number and reason, and the other rows are stored. A problem with the
whole file or the options is one :class:`IngestError` before anything is stored.

Example, the CDNOW sample (whitespace separated, no header; customer id, sample id, YYYYMMDD date,
CDs, dollar value)::

    ingest_file(store, "CDNOW_sample.txt", "demo", header=False, customer_col=1,
                timestamp_col=3, value_col=5, timestamp_format="%Y%m%d")
"""

from nextbest.ingest.files import (
    FORMATS,
    MAX_LINE_CHARS,
    Format,
    IngestError,
    default_source,
    detect_format,
)
from nextbest.ingest.importer import IngestReport, RowError, ingest_file
from nextbest.ingest.rows import (
    DECIMALS,
    ID_KEY_PREFIX,
    NEGATIVE_VALUES,
    RESERVED_KEY_PREFIX,
    Column,
    NegativeValues,
)

__all__ = [
    "DECIMALS",
    "FORMATS",
    "ID_KEY_PREFIX",
    "MAX_LINE_CHARS",
    "NEGATIVE_VALUES",
    "RESERVED_KEY_PREFIX",
    "Column",
    "Format",
    "IngestError",
    "IngestReport",
    "NegativeValues",
    "RowError",
    "default_source",
    "detect_format",
    "ingest_file",
]
