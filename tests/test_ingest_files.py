"""Bulk import: problems of a whole file (one clear error, nothing stored) and of one line (a
rejected row with its line number, the rest imported), through ``ingest_file`` and the CLI."""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from nextbest.commands.store import register_store_commands
from nextbest.ingest import MAX_LINE_CHARS, IngestError, RowError, ingest_file
from nextbest.store import Store, open_store

HEADER = "customer_id,timestamp,value\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'ingest.db'}", pepper=b"p") as store:
        store.upgrade()
        store.create_tenant("acme")
        yield store


def _customers(store: Store) -> list[str]:
    return sorted(store.customer_summary_columns("acme").customer_ids)


def _cli() -> click.Group:
    group = click.Group("nextbest")
    register_store_commands(group)
    return group


def _ingest(store: Store, path: Path, *options: str) -> click.testing.Result:
    args = ["ingest", str(path), "--tenant", "acme", "--database", store.url, *options]
    return CliRunner().invoke(_cli(), args)


# -- line-level problems: a rejected row each, the rest imported --------------------------------

ROW_PROBLEMS: list[tuple[str, bytes, RowError]] = [
    (
        "non-UTF-8 byte",
        b"bad\xe9,2024-01-02,2\n",
        RowError(
            3,
            "the line is not valid UTF-8 text (byte 0xE9 at character 4); pass --encoding if "
            "the file is in another encoding (e.g. cp1252)",
        ),
    ),
    (
        "field over 131,072 characters",
        b"big,2024-01-02," + b"9" * 200_000 + b"\n",
        RowError(3, "a field is longer than 131,072 characters"),
    ),
    (
        "NUL in the customer id",
        b"a\x00b,2024-01-02,2\n",
        RowError(3, "customer id must not contain control characters (U+0000 at position 2)"),
    ),
    (
        "NUL in the time",
        b"nul,2024-01\x00-02,2\n",
        RowError(3, "bad timestamp '2024-01\\x00-02' (expected ISO-8601)"),
    ),
    (
        "NUL in the value",
        b"nul,2024-01-02,2\x00\n",
        RowError(3, "value '2\\x00' is not a number"),
    ),
    (
        "year 0 in UTC",
        b"y0,0001-01-01T00:00:00+01:00,2\n",
        RowError(
            3,
            "timestamp '0001-01-01T00:00:00+01:00' must be between 1900-01-01T00:00:00Z and "
            "2200-01-01T00:00:00Z (UTC)",
        ),
    ),
    (
        "a time in the future",
        b"soon,2199-12-31T00:00:00Z,2\n",
        RowError(
            3,
            "timestamp '2199-12-31T00:00:00Z' is more than 5 minutes in the future; send the "
            "time the outcome happened",
        ),
    ),
    (
        "a time past the window",
        b"late,2200-01-01T00:00:00Z,2\n",
        RowError(
            3,
            "timestamp '2200-01-01T00:00:00Z' must be between 1900-01-01T00:00:00Z and "
            "2200-01-01T00:00:00Z (UTC)",
        ),
    ),
    (
        "a value out of range",
        b"rich,2024-01-02,1e13\n",
        RowError(3, "value '1e13' must be at most 1e+12 in magnitude"),
    ),
]


def _file_with(tmp_path: Path, bad_line: bytes, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(HEADER.encode() + b"ok1,2024-01-01,1\n" + bad_line + b"ok2,2024-01-03,3\n")
    return path


@pytest.mark.parametrize(
    ("bad_line", "error"),
    [case[1:] for case in ROW_PROBLEMS],
    ids=[case[0] for case in ROW_PROBLEMS],
)
def test_a_bad_line_is_a_rejected_row_and_the_rest_is_imported(
    store: Store, tmp_path: Path, bad_line: bytes, error: RowError
) -> None:
    path = _file_with(tmp_path, bad_line)
    report = ingest_file(store, path, "acme")
    assert report.failed == [error]
    assert (report.rows_read, report.stored) == (3, 2)
    assert _customers(store) == ["ok1", "ok2"]


@pytest.mark.parametrize(
    ("bad_line", "error"),
    [case[1:] for case in ROW_PROBLEMS],
    ids=[case[0] for case in ROW_PROBLEMS],
)
def test_a_bad_line_through_the_command(
    store: Store, tmp_path: Path, bad_line: bytes, error: RowError
) -> None:
    path = _file_with(tmp_path, bad_line)
    result = _ingest(store, path)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "stored: 2," in result.stdout and "rejected: 1" in result.stdout
    assert f"line {error.line}: {error.reason}" in result.stderr
    assert _customers(store) == ["ok1", "ok2"]


def test_the_reject_file_keeps_the_original_bytes(store: Store, tmp_path: Path) -> None:
    path = _file_with(tmp_path, b"bad\xe9,2024-01-02,2\n")
    rejects = tmp_path / "rejects.csv"
    ingest_file(store, path, "acme", reject_file=rejects)
    lines = rejects.read_bytes().splitlines()
    assert lines[0] == b"line,reason,customer_id,timestamp,value"
    assert lines[1].startswith(b"3,") and lines[1].endswith(b",bad\xe9,2024-01-02,2")


def test_another_encoding(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes((HEADER + "Müller,2024-01-01,5\n").encode("cp1252"))
    assert ingest_file(store, path, "acme").failed[0].reason.startswith("the line is not valid")
    report = ingest_file(store, path, "acme", encoding="cp1252")
    assert report.ok and _customers(store) == ["Müller"]
    with pytest.raises(IngestError, match="not a known text encoding"):
        ingest_file(store, path, "acme", encoding="klingon")


def test_a_line_too_long_to_read_is_a_rejected_row(store: Store, tmp_path: Path) -> None:
    path = _file_with(tmp_path, b"long,2024-01-02,2," + b"x" * (MAX_LINE_CHARS + 10) + b"\n")
    report = ingest_file(store, path, "acme")
    assert report.failed == [RowError(3, "the line is longer than 1,048,576 characters")]
    assert _customers(store) == ["ok1", "ok2"]


def test_the_whitespace_format_rejects_the_same_lines(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "rows.txt"
    path.write_bytes(
        b"ok1 20240101 1\n"
        + b"big 20240102 "
        + b"9" * 200_000
        + b"\n"
        + b"bad\xe9 20240102 2\n"
        + b"ok2 20240103 3\n"
    )
    options = {"header": False, "customer_col": 1, "timestamp_col": 2, "value_col": 3}
    report = ingest_file(store, path, "acme", timestamp_format="%Y%m%d", **options)  # type: ignore[arg-type]
    assert [(e.line, e.reason.split(" (")[0]) for e in report.failed] == [
        (2, "a field is longer than 131,072 characters"),
        (3, "the line is not valid UTF-8 text"),
    ]
    assert _customers(store) == ["ok1", "ok2"]


def test_an_unclosed_quote_rejects_every_line_it_swallowed(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text(
        "customer_id,timestamp,value,note\n"
        "ok1,2024-01-01,1,fine\n"
        'q1,2024-01-02,2,"unclosed\n'
        'q2,2024-01-03,3,"closed"late\n'
        'ok2,2024-01-04,4,"a quoted\nline break"\n'
        "ok3,2024-01-05,5,fine\n"
        'q3,2024-01-06,6,"never closed\n'
        "q4,2024-01-07,7,fine\n"
    )
    report = ingest_file(store, path, "acme")
    assert [(e.line, e.reason[:40]) for e in report.failed] == [
        (3, "the line is not valid CSV (',' expected "),
        (4, "read as part of the row of line 3, rejec"),
        (8, "a quoted field is not closed before the "),
        (9, "read as part of the row of line 8, rejec"),
    ]
    assert "lines 3-4 were read as one row (an unclosed quote?)" in report.failed[0].reason
    assert report.rows_read == 7 and report.stored == 3
    assert _customers(store) == ["ok1", "ok2", "ok3"]


def test_line_numbers_with_other_line_ends(store: Store, tmp_path: Path) -> None:
    for name, end in (("cr.csv", "\r"), ("crlf.csv", "\r\n")):
        path = tmp_path / name
        path.write_text(
            end.join([HEADER.strip(), "a,2024-01-01,1", "b,nope,2", "c,2024-01-03,3", ""]),
            newline="",
        )
        report = ingest_file(store, path, "acme")
        assert report.failed == [RowError(3, "bad timestamp 'nope' (expected ISO-8601)")]
        assert report.stored + report.duplicates == 2


# -- file-level problems: one error, nothing stored ---------------------------------------------


def test_gzip_is_recognised_by_content_and_a_corrupt_one_is_one_error(
    store: Store, tmp_path: Path
) -> None:
    packed = gzip.compress((HEADER + "z1,2024-01-01,5\n").encode())
    unnamed = tmp_path / "export.csv"  # gzip content without .gz
    unnamed.write_bytes(packed)
    assert ingest_file(store, unnamed, "acme").stored == 1
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(IngestError, match=r"^cut.csv.gz is not a valid gzip file: "):
        ingest_file(store, truncated, "acme")
    garbage = tmp_path / "bad.csv.gz"
    garbage.write_bytes(b"\x1f\x8bnot really gzip at all")
    with pytest.raises(IngestError, match="not a valid gzip file"):
        ingest_file(store, garbage, "acme")
    result = _ingest(store, truncated)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: cut.csv.gz is not a valid gzip file" in result.output
    assert _customers(store) == ["z1"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04rest of a workbook", "is a ZIP archive (an Excel .xlsx workbook?)"),
        (bytes.fromhex("d0cf11e0a1b11ae1") + b"...", "is an Excel .xls workbook"),
        (b"PAR1....", "is a Parquet file: pass --format parquet"),
        (("\ufeff" + HEADER).encode("utf-16-le"), "is UTF-16 text"),
        (b"", "the file is empty"),
    ],
)
def test_files_that_are_not_csv(store: Store, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=re.escape(message)):
        ingest_file(store, path, "acme")
    result = _ingest(store, path)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_utf16_with_its_encoding(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "unicode.csv"
    path.write_bytes((HEADER + "ü1,2024-01-01,5\n").encode("utf-16"))
    assert ingest_file(store, path, "acme", encoding="utf-16").stored == 1


def test_parquet_times_outside_pythons_calendar_are_rejected_rows(
    store: Store, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": ["year0", "ok", "late", "day"],
                "timestamp": pa.array(
                    [-70_000_000_000, 1_704_067_200, 8_000_000_000, None], pa.timestamp("s", "UTC")
                ),
                "value": [1.0, 2.0, 3.0, 4.0],
            }
        ),
        path,
    )
    report = ingest_file(store, path, "acme")
    window = "must be between 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z (UTC)"
    assert report.failed == [
        RowError(1, f"timestamp {window}"),
        RowError(3, f"timestamp {window}"),
        RowError(4, "missing timestamp"),
    ]
    [event] = store.iter_interactions("acme", "ok")
    assert event.occurred_at.isoformat() == "2024-01-01T00:00:00+00:00"

    dates = tmp_path / "dates.parquet"
    pq.write_table(
        pa.table(
            {"customer_id": ["d0", "d1"], "timestamp": pa.array([-800_000, 19_723], pa.date32())}
        ),
        dates,
    )
    report = ingest_file(store, dates, "acme")
    assert [e.line for e in report.failed] == [1] and report.stored == 1
    [event] = store.iter_interactions("acme", "d1")
    assert event.occurred_at.isoformat() == "2024-01-01T00:00:00+00:00"


def test_parquet_binary_text_and_float_ids_are_read_as_text(store: Store, tmp_path: Path) -> None:
    # Older writers (Spark, Impala) store strings as binary; pandas stores an int column with
    # gaps as float. Neither may reach the store as "b'c1'" or "1001.0".
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "order_id": [1001.0, 1002.0, None],
                "customer_id": pa.array([b"c1", b"c\xff2", b"c3"], pa.binary()),
                "timestamp": ["2024-01-01T00:00:00Z"] * 3,
                "value": [5.0, 6.0, 7.0],
                "outcome": pa.array([b"conversion"] * 3, pa.binary()),
            }
        ),
        path,
    )
    report = ingest_file(store, path, "acme", id_col="order_id")
    assert report.failed == [
        RowError(2, "customer id is not valid UTF-8 text (byte 2)"),
        RowError(3, "missing order_id"),
    ]
    [event] = store.iter_interactions("acme", "c1")
    assert event.idempotency_key == "ingest:id:conversion:1001" and event.outcome == "conversion"


def test_a_file_that_is_not_parquet(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fake = tmp_path / "fake.parquet"
    fake.write_text(HEADER)
    with pytest.raises(IngestError, match="is not a Parquet file"):
        ingest_file(store, fake, "acme")
    real = tmp_path / "real.parquet"
    pq.write_table(pa.table({"customer_id": ["a"], "timestamp": ["2024-01-01"]}), real)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(real.read_bytes()[:-20])
    with pytest.raises(IngestError, match="is not a readable Parquet file"):
        ingest_file(store, cut, "acme")
    with pytest.raises(IngestError, match="--no-header does not apply to Parquet"):
        ingest_file(store, real, "acme", header=False, customer_col=1, timestamp_col=2)
    with pytest.raises(IngestError, match="--delimiter applies to text files"):
        ingest_file(store, real, "acme", delimiter=";")


def test_a_reject_file_for_line_problems_has_no_fields(store: Store, tmp_path: Path) -> None:
    path = _file_with(tmp_path, b'q,2024-01-02,"unclosed\n')
    rejects = tmp_path / "rejects.csv"
    ingest_file(store, path, "acme", reject_file=rejects)
    with rejects.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert [row[0] for row in rows[1:]] == ["3", "4"]


def test_a_reject_file_that_cannot_be_written_stops_before_storing(
    store: Store, tmp_path: Path
) -> None:
    path = _file_with(tmp_path, b"nope,2024-01-02,x\n")
    with pytest.raises(IngestError, match="cannot write the reject file"):
        ingest_file(store, path, "acme", reject_file=tmp_path / "missing" / "rejects.csv")
    before = path.read_bytes()
    with pytest.raises(IngestError, match="is the file being imported"):
        ingest_file(store, path, "acme", reject_file=path)
    assert path.read_bytes() == before
    assert _customers(store) == []
    result = _ingest(store, path, "--reject-file", str(tmp_path / "missing" / "r.csv"))
    assert result.exit_code == 1 and "cannot write the reject file" in result.output
    assert "Traceback" not in result.output
