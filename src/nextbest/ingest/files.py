"""Reading interaction files: formats, compression, encodings, and the rows of CSV,
whitespace-separated text and Parquet, each with its line number.

A problem with the whole file (unreadable, a corrupt gzip stream, a ZIP archive or UTF-16 text
where CSV was expected, not Parquet) is an :class:`IngestError`, found before any row is
stored. A problem with one line (bytes that are not in the encoding, a line or field too long)
travels with that line's row, so the importer rejects exactly that row and reads on.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

Format = Literal["csv", "parquet", "whitespace"]
FORMATS: tuple[str, ...] = ("csv", "parquet", "whitespace")

#: The longest line read (in characters); a longer line is a rejected row, read no further.
MAX_LINE_CHARS = 1_048_576

#: A row as the readers yield it: its (first) line, its fields (None when the line could not be
#: split into fields) and the line-level problem that rejects it (None when there is none).
Row = tuple[int, Sequence[Any] | None, str | None]

_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",  # tab-separated: CSV with a tab delimiter, so empty cells keep their place
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "whitespace",
    ".dat": "whitespace",
}
_DEFAULT_DELIMITERS = {".tsv": "\t"}
_COMPRESSION_SUFFIXES = (".gz",)
_HASH_BLOCK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
#: What a file holds when its first bytes are these, and what to do instead.
_NOT_TEXT: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "is a ZIP archive (an Excel .xlsx workbook?): export the sheet as CSV"),
    (
        bytes.fromhex("d0cf11e0a1b11ae1"),
        "is an Excel .xls workbook (or another OLE2 document): export the sheet as CSV",
    ),
    (b"PAR1", "is a Parquet file: pass --format parquet (or name it .parquet)"),
)
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
#: Characters that stand for undecodable bytes (errors="surrogateescape": U+DC80-U+DCFF).
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_LINE_ENDS = ("\n", "\r")


class IngestError(Exception):
    """The file or the options cannot be used at all (no row was stored)."""


def detect_format(path: str | Path) -> Format:
    """The format implied by the file name (``.gz`` is looked through); ``.tsv`` is CSV with a
    tab delimiter."""
    suffix = Path(Path(path).name.lower().removesuffix(".gz")).suffix
    if suffix not in _EXTENSIONS:
        raise IngestError(
            f"cannot tell the format of {Path(path).name!r} from its extension: pass --format "
            f"({', '.join(FORMATS)})"
        )
    return _EXTENSIONS[suffix]


def default_delimiter(path: str | Path) -> str:
    """The delimiter of a CSV file when none is given: a tab for ``.tsv``, else a comma."""
    suffix = Path(Path(path).name.lower().removesuffix(".gz")).suffix
    return _DEFAULT_DELIMITERS.get(suffix, ",")


def default_source(path: str | Path) -> str:
    """The source name of a file when none is given: its name without directories and without
    a compression suffix (``exports/CDNOW_master.txt.gz`` -> ``CDNOW_master.txt``)."""
    name = Path(path).name
    for suffix in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def parse_delimiter(text: str) -> str:
    """A ``--delimiter``: one character; a tab may be spelled ``\\t`` or ``tab``."""
    if text in ("\\t", "tab", "TAB"):
        return "\t"
    if len(text) != 1:
        raise IngestError(f"--delimiter {text!r} must be one character (spell a tab \\t)")
    if text in ('"', "\r", "\n", "\x00"):
        raise IngestError(f"--delimiter {text!r} cannot separate fields: choose another character")
    return text


def check_encoding(name: str) -> str:
    """The codec name to read a text file with (``utf-8`` skips a byte order mark)."""
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise IngestError(f"--encoding {name!r} is not a known text encoding") from None
    return "utf-8-sig" if codec.name in ("utf-8", "utf-8-sig") else codec.name


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the whole-file pass learned: SHA-256 of the (decompressed) content, its number of
    lines (rows for Parquet), and whether it is gzip-compressed."""

    sha256: str
    lines: int
    compressed: bool


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _open_bytes(path: Path, compressed: bool) -> IO[bytes]:
    if compressed:
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is binary IO
    return open(path, "rb")


def inspect_file(path: Path, fmt: Format, encoding: str) -> FileFacts:
    """Read the whole file once (fingerprint and line count) and refuse, as one IngestError,
    what cannot be imported at all. Compression is recognised by content, not by name."""
    try:
        compressed = _is_gzip(path)
        if fmt == "parquet":
            return _inspect_parquet(path, compressed)
        digest = hashlib.sha256()
        lines = 0
        last = b"\n"
        with _open_bytes(path, compressed) as handle:
            first = True
            while block := handle.read(_HASH_BLOCK):
                if first:
                    _check_text_start(block, encoding)
                    first = False
                digest.update(block)
                lines += block.count(b"\n")
                last = block[-1:]
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(_unreadable(path, exc)) from None
    return FileFacts(digest.hexdigest(), lines + (last != b"\n"), compressed)


def _unreadable(path: Path, exc: BaseException) -> str:
    if isinstance(exc, gzip.BadGzipFile | EOFError | zlib.error):
        return f"{path.name} is not a valid gzip file: {exc or 'it ends too early'}"
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot read {path}: {reason}"


def _check_text_start(block: bytes, encoding: str) -> None:
    for magic, problem in _NOT_TEXT:
        if block.startswith(magic):
            raise IngestError(f"the file {problem}")
    if encoding == "utf-8-sig" and block.startswith(_UTF16_BOMS):
        raise IngestError(
            "the file is UTF-16 text (Excel's 'Unicode Text'): pass --encoding utf-16, or save "
            "it as 'CSV UTF-8'"
        )


def _inspect_parquet(path: Path, compressed: bool) -> FileFacts:
    if compressed:
        raise IngestError(f"{path.name} is gzip-compressed: Parquet files are read uncompressed")
    with open(path, "rb") as handle:
        if handle.read(4) != b"PAR1":
            raise IngestError(f"{path.name} is not a Parquet file (it does not start with PAR1)")
        handle.seek(0)
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return FileFacts(digest, 0, False)


class Lines:
    """The decoded physical lines of a text file, numbered from 1 (``count``: lines read so
    far). A line that cannot be used as text is recorded in ``problems`` by number: bytes that
    are not in the encoding (the line is still given to the reader, so CSV quoting stays in
    step) or a line longer than :data:`MAX_LINE_CHARS` (read no further and given as an empty
    line, so memory stays bounded)."""

    def __init__(self, handle: IO[str], encoding: str) -> None:
        self._handle = handle
        self._encoding = "UTF-8" if encoding == "utf-8-sig" else encoding
        self.count = 0
        self.problems: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        read = self._handle.readline
        size = MAX_LINE_CHARS + 2  # room for the line's content and a CR LF
        while line := read(size):
            self.count += 1
            if len(line) == size and not line.endswith(_LINE_ENDS):
                # Skip the rest of the over-long line, a bounded read at a time.
                rest = read(size)
                while rest and not rest.endswith(_LINE_ENDS):
                    rest = read(size)
                self.problems[self.count] = f"the line is longer than {MAX_LINE_CHARS:,} characters"
                yield "\n"
                continue
            if not line.isascii():
                found = _ESCAPED_BYTE.search(line)
                if found is not None:
                    self.problems[self.count] = (
                        f"the line is not valid {self._encoding} text (byte "
                        f"0x{ord(found.group()) - 0xDC00:02X} at character {found.start() + 1}); "
                        "pass --encoding if the file is in another encoding (e.g. cp1252)"
                    )
            yield line

    def problem(self, first: int, last: int) -> str | None:
        """The first problem recorded for lines ``first`` to ``last`` (and forget them)."""
        found = None
        for number in range(first, last + 1):
            problem = self.problems.pop(number, None)
            if found is None:
                found = problem
        return found


def open_text(path: Path, compressed: bool, encoding: str) -> IO[str]:
    """The file as text; undecodable bytes become U+DC80-U+DCFF (see :class:`Lines`)."""
    return io.TextIOWrapper(
        _open_bytes(path, compressed), encoding=encoding, errors="surrogateescape", newline=""
    )


def csv_rows(lines: Lines, delimiter: str) -> Iterator[Row]:
    """The rows of a CSV text (blank lines skipped); a row spanning lines (a quoted line break)
    is numbered by its first line. The reader is strict, so malformed quoting (an unclosed
    quote, text after a closing quote) or a field longer than the csv module's limit rejects
    the lines read for that row, each with its number, and reading goes on after them."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    previous = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            first, previous = previous + 1, reader.line_num
            lines.problem(first, previous)
            yield first, None, _csv_problem(exc, first, previous)
            for number in range(first + 1, previous + 1):
                yield number, None, f"read as part of the row of line {first}, rejected"
            continue
        first, previous = previous + 1, reader.line_num
        if lines.problems:
            line_problem = lines.problem(first, previous)
            if line_problem is not None:
                yield first, fields, line_problem
                continue
        if not any(fields) or (len(fields) == 1 and not fields[0].strip()):
            continue
        yield first, fields, None


def _csv_problem(exc: csv.Error, first: int, last: int) -> str:
    message = str(exc)
    if "field limit" in message:
        problem = f"a field is longer than {csv.field_size_limit():,} characters"
    elif "unexpected end of data" in message:
        problem = "a quoted field is not closed before the end of the file"
    elif "expected after" in message:
        problem = (
            f"the line is not valid CSV ({message}: a quote inside a quoted field is written twice)"
        )
    else:
        problem = f"the line is not valid CSV ({message})"
    if first != last:
        problem += f"; lines {first}-{last} were read as one row (an unclosed quote?)"
    return problem


def whitespace_rows(lines: Lines) -> Iterator[Row]:
    """The rows of whitespace-separated text (blank lines skipped); fields are limited as in
    CSV (the csv module's field size limit)."""
    limit = csv.field_size_limit()
    for line in lines:
        number = lines.count
        if lines.problems:
            problem = lines.problems.pop(number, None)
            if problem is not None:
                yield number, line.split() or None, problem
                continue
        fields = line.split()
        if not fields:
            continue
        if len(line) > limit and any(len(field) > limit for field in fields):
            yield number, None, f"a field is longer than {limit:,} characters"
            continue
        yield number, fields, None


class Epoch(float):
    """A time read from a Parquet timestamp or date column, as epoch seconds (UTC)."""

    __slots__ = ()


_UNIT_SECONDS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def parquet_columns(path: Path) -> tuple[list[str], int]:
    """The column names and the number of rows of a Parquet file."""
    parquet = _parquet_file(path)
    return list(parquet.schema_arrow.names), parquet.metadata.num_rows


def _parquet_file(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is in the dev extra
        raise IngestError("reading Parquet needs pyarrow: pip install 'nextbest[parquet]'") from exc
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and others for bad files
        raise IngestError(f"{path.name} is not a readable Parquet file: {exc}") from None


def parquet_rows(path: Path, columns: Sequence[int]) -> Iterator[Row]:
    """The rows of a Parquet file (numbered from 1), with only ``columns`` (0-based, in this
    order). Times and dates come as :class:`Epoch` seconds, never as Python datetimes, so a
    time beyond Python's calendar (before year 1) is a rejected row, not an overflow."""
    import pyarrow as pa

    parquet = _parquet_file(path)
    names = [parquet.schema_arrow.names[index] for index in columns]
    number = 0
    try:
        for batch in parquet.iter_batches(batch_size=65_536, columns=names):
            values = [_pylist(column, pa) for column in batch.columns]
            for row in zip(*values, strict=True):
                number += 1
                bad = next((i for i, cell in enumerate(row) if type(cell) is _NotText), None)
                if bad is None:
                    yield number, row, None
                else:
                    yield number, row, f"field {bad + 1} {row[bad].problem}"
    except IngestError:
        raise
    except Exception as exc:  # a corrupt page: the rows before it are stored already
        raise IngestError(
            f"{path.name} cannot be read after row {number}: {exc} (the rows before it were "
            "imported; importing again after a fix adds only what is missing)"
        ) from None


class _NotText(bytes):
    """A binary Parquet cell that is not UTF-8 text (the row is rejected with ``problem``)."""

    problem: str


def _text(value: bytes) -> str | _NotText:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        cell = _NotText(value)
        cell.problem = f"is not valid UTF-8 text (byte {exc.start + 1})"
        return cell


def _pylist(column: Any, pa: Any) -> list[Any]:
    kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        # Text written as binary (older Spark, Impala): read as UTF-8 like a CSV cell.
        return [None if v is None else _text(v) for v in column.to_pylist()]
    if pa.types.is_timestamp(kind):
        scale = _UNIT_SECONDS[kind.unit]
        return [
            None if v is None else Epoch(v / scale) for v in column.cast(pa.int64()).to_pylist()
        ]
    if pa.types.is_date32(kind):
        return [
            None if v is None else Epoch(v * 86_400) for v in column.cast(pa.int32()).to_pylist()
        ]
    if pa.types.is_date64(kind):
        return [
            None if v is None else Epoch(v / 1_000) for v in column.cast(pa.int64()).to_pylist()
        ]
    return list(column.to_pylist())


__all__ = [
    "FORMATS",
    "MAX_LINE_CHARS",
    "Epoch",
    "FileFacts",
    "Format",
    "IngestError",
    "Lines",
    "Row",
    "check_encoding",
    "csv_rows",
    "default_delimiter",
    "default_source",
    "detect_format",
    "inspect_file",
    "open_text",
    "parquet_columns",
    "parquet_rows",
    "parse_delimiter",
    "whitespace_rows",
]
