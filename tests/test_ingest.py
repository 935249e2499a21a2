"""Bulk import of interaction files (library function and the ``ingest`` command)."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from nextbest.commands.store import register_store_commands
from nextbest.ingest import IngestError, RowError, default_source, detect_format, ingest_file
from nextbest.ingest import rows as ingest_rows
from nextbest.store import Store, TenantNotFoundError, open_store

CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"
CDNOW_OPTIONS = {
    "header": False,
    "customer_col": 1,
    "timestamp_col": 3,
    "value_col": 5,
    "timestamp_format": "%Y%m%d",
}

GOOD_AND_BAD = """customer_id,timestamp,value,outcome,offer_id
c1,2024-01-05T10:00:00Z,10.50,conversion,o1
c2,2024-01-06,0,click,o2
c1,not-a-date,3,conversion,o1

,2024-01-07,1,conversion,o1
c3,2024-01-08,-4,conversion,o1
c3,2024-01-08,abc,conversion,o1
c3,2024-01-08,nan,conversion,o1
c4,2024-01-09,1,teleport,o1
c5,2024-01-10 08:30:00+02:00,,impression,
c5,2024-01-10
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'ingest.db'}", pepper=b"p") as store:
        store.upgrade()
        store.create_tenant("acme")
        yield store


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    return path


EXPECTED_ERRORS = [
    RowError(4, "bad timestamp 'not-a-date' (expected ISO-8601)"),
    RowError(6, "missing customer id"),
    RowError(
        7,
        "value '-4' must be >= 0 (to record negative amounts as refunds, pass "
        "--negative-values refund)",
    ),
    RowError(8, "value 'abc' is not a number"),
    RowError(9, "value 'nan' must be a finite number"),
    RowError(10, "unknown outcome 'teleport'"),
    RowError(12, "has 2 fields, the header has 5"),
]


def test_csv_with_bad_rows(store: Store, sample: Path, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    seen: list[int] = []
    totals: list[int] = []
    report = ingest_file(
        store, sample, "acme", reject_file=rejects, progress=seen.append, on_start=totals.append
    )
    assert report.rows_read == 10
    assert (report.stored, report.duplicates) == (3, 0)
    assert report.failed == EXPECTED_ERRORS
    assert not report.ok
    assert totals == [12] and sum(seen) == 11  # every line after the header

    with rejects.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "reason", "customer_id", "timestamp", "value", "outcome", "offer_id"]
    assert rows[1] == [
        "4",
        "bad timestamp 'not-a-date' (expected ISO-8601)",
        "c1",
        "not-a-date",
        "3",
        "conversion",
        "o1",
    ]
    assert [int(r[0]) for r in rows[1:]] == [e.line for e in EXPECTED_ERRORS]

    c1 = store.get_customer_summary("acme", "c1")
    assert c1 is not None and (c1.conversions, c1.total_value) == (1, 10.5)
    c5 = store.get_customer_summary("acme", "c5")
    assert c5 is not None and c5.impressions == 1 and c5.total_value == 0
    assert c5.first_at.isoformat() == "2024-01-10T06:30:00+00:00"
    [c5_event] = store.iter_interactions("acme", "c5")
    assert c5_event.offer_id is None
    assert store.get_offer_summaries("acme", "c2")["o2"].positive == 1


def test_reingesting_the_same_file_adds_nothing(store: Store, sample: Path, tmp_path: Path) -> None:
    first = ingest_file(store, sample, "acme")
    again = ingest_file(store, sample, "acme")
    assert (again.stored, again.duplicates, len(again.failed)) == (0, first.stored, 7)
    assert len(list(store.iter_interactions("acme"))) == 3
    # The same content gzipped is the same file.
    packed = tmp_path / "events.csv.gz"
    packed.write_bytes(gzip.compress(sample.read_bytes()))
    assert ingest_file(store, packed, "acme").stored == 0
    # An edited file is the same source: only the added row is new.
    sample.write_text(GOOD_AND_BAD + "c9,2024-02-01,1,conversion,o1\n", encoding="utf-8")
    assert ingest_file(store, sample, "acme").stored == 1
    # Another file name is another source (identical rows are new events) unless named alike.
    copy = tmp_path / "copy.csv"
    copy.write_text(sample.read_text(encoding="utf-8"), encoding="utf-8")
    assert ingest_file(store, copy, "acme", source="events.csv").stored == 0
    other = ingest_file(store, copy, "acme")
    assert (other.source, other.stored) == ("copy.csv", 4)


def test_fixing_rejected_rows_and_rerunning_adds_exactly_those_rows(
    store: Store, sample: Path
) -> None:
    first = ingest_file(store, sample, "acme")
    assert (first.stored, len(first.failed)) == (3, 7)
    fixed = GOOD_AND_BAD.replace("c1,not-a-date,3", "c1,2024-01-06,3").replace(
        "c3,2024-01-08,-4", "c3,2024-01-08,4"
    )
    sample.write_text(fixed, encoding="utf-8")
    again = ingest_file(store, sample, "acme")
    assert (again.stored, again.duplicates, len(again.failed)) == (2, 3, 5)
    assert len(list(store.iter_interactions("acme"))) == 5
    c1 = store.get_customer_summary("acme", "c1")
    assert c1 is not None and (c1.conversions, c1.total_value) == (2, 13.5)
    # Lines inserted above, rows reordered, numbers reformatted: still nothing new.
    lines = fixed.splitlines()
    reordered = [lines[0], "c7,2024-03-01,1,conversion,o1", *reversed(lines[1:])]
    sample.write_text("\n".join(reordered).replace("10.50", "10.5") + "\n", encoding="utf-8")
    third = ingest_file(store, sample, "acme")
    assert (third.stored, third.duplicates) == (1, 5)


def test_identical_rows_on_different_lines_are_distinct(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("customer_id,timestamp,value\nc1,2024-01-01,5\nc1,2024-01-01,5\n")
    report = ingest_file(store, path, "acme")
    assert report.stored == 2
    assert store.get_customer_summary("acme", "c1").total_value == 10  # type: ignore[union-attr]
    assert ingest_file(store, path, "acme").stored == 0
    # A third identical purchase appended (anywhere) is one more event.
    path.write_text(
        "customer_id,timestamp,value\nc1,2024-01-01,5.0\nc2,2024-01-01,1\n" * 1
        + "c1,2024-01-01,5\nc1,2024-01-01,5\n"
    )
    assert ingest_file(store, path, "acme").stored == 2  # c2 and the third c1
    assert store.get_customer_summary("acme", "c1").total_value == 15  # type: ignore[union-attr]


def test_default_source_and_option() -> None:
    assert default_source("/data/exports/CDNOW_master.txt.gz") == "CDNOW_master.txt"
    assert default_source("events.CSV.GZ") == "events.CSV"
    assert default_source("events.csv") == "events.csv"


def test_empty_source_is_refused(store: Store, sample: Path) -> None:
    with pytest.raises(IngestError, match="--source"):
        ingest_file(store, sample, "acme", source="  ")


BAD_IDS = """customer_id,timestamp,value,offer_id,channel
good1,2024-01-01,1,o1,web
{long},2024-01-01,1,o1,web
good2,2024-01-01,1,{long},web
nul\x00id,2024-01-01,1,o1,web
good3,2024-01-01,1,o1,we\x01b
good4,2024-01-01,1,o1,
good5,2024-01-01,1,,app
""".format(long="x" * 257)


def test_invalid_ids_are_rejected_with_their_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(BAD_IDS, encoding="utf-8")
    report = ingest_file(store, path, "acme", chunk_size=2)
    assert report.failed == [
        RowError(3, "customer id must be at most 256 characters long (it has 257)"),
        RowError(4, "offer id must be at most 256 characters long (it has 257)"),
        RowError(5, "customer id must not contain control characters (U+0000 at position 4)"),
        RowError(6, "channel must not contain control characters (U+0001 at position 3)"),
    ]
    assert report.stored == 3
    assert sorted(store.customer_summary_columns("acme").customer_ids) == [
        "good1",
        "good4",
        "good5",
    ]


def test_rows_the_store_refuses_are_reported_with_their_line(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's bulk path keeps the chunk's valid rows when it refuses one; ingest reports
    the refused row with its line (here the parser's id check is switched off to get there)."""
    monkeypatch.setattr(ingest_rows, "id_problem", lambda value: None)
    path = tmp_path / "ids.csv"
    path.write_text(BAD_IDS, encoding="utf-8")
    report = ingest_file(store, path, "acme", chunk_size=100)
    assert [(e.line, e.reason.split(" must ")[0]) for e in report.failed] == [
        (3, "customer id"),
        (4, "offer id"),
        (5, "customer id"),
        (6, "channel"),
    ]
    assert report.stored == 3


def test_columns_by_name_and_position_and_custom_format(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("u7  03/02/2024  web  19.99\nu8  04/02/2024  app  5\n")
    report = ingest_file(
        store,
        path,
        "acme",
        header=False,
        customer_col=1,
        timestamp_col=2,
        channel_col=3,
        value_col=4,
        timestamp_format="%d/%m/%Y",
        outcome="click",
    )
    assert report.ok and report.stored == 2
    [event] = store.iter_interactions("acme", "u7")
    assert (event.channel, event.value, event.outcome) == ("web", 19.99, "click")
    assert event.occurred_at.isoformat() == "2024-02-03T00:00:00+00:00"

    named = tmp_path / "named.csv"
    named.write_text("who,when,amount\nu9,2024-05-01T00:00:00,2.5\n")
    report = ingest_file(
        store, named, "acme", customer_col="who", timestamp_col="when", value_col=3
    )
    assert report.ok and store.get_customer_summary("acme", "u9").total_value == 2.5  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"header": False}, "give the customer column by position"),
        ({"customer_col": "who"}, "'who' is not in the header"),
        ({"header": False, "customer_col": "who", "timestamp_col": 2}, "has no header"),
        ({"customer_col": 0}, "positions start at 1"),
        ({"customer_col": 9}, "the header has 5 columns"),
    ],
)
def test_unusable_options(store: Store, sample: Path, options: dict, message: str) -> None:
    with pytest.raises(IngestError, match=message):
        ingest_file(store, sample, "acme", **options)


def test_missing_header_columns_and_tenant(store: Store, tmp_path: Path, sample: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,time\n1,2024-01-01\n")
    with pytest.raises(IngestError, match="no 'customer_id' column"):
        ingest_file(store, path, "acme")
    with pytest.raises(TenantNotFoundError):
        ingest_file(store, sample, "nobody")
    with pytest.raises(IngestError, match="not a file"):
        ingest_file(store, tmp_path / "missing.csv", "acme")


@pytest.mark.parametrize(
    ("fmt", "reason"), [("%Q", "bad directive"), ("%s", "bad directive"), ("date", "no % code")]
)
def test_an_unreadable_timestamp_format_stops_the_import_at_once(
    store: Store, tmp_path: Path, fmt: str, reason: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_text("customer_id,timestamp\nu1,20240101\n")
    with pytest.raises(IngestError, match=f"--timestamp-format '{fmt}' .*{reason}"):
        ingest_file(store, path, "acme", timestamp_format=fmt)
    assert list(store.iter_interactions("acme", "u1")) == []


def test_timestamp_formats_with_a_zone_are_read(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "zoned.csv"
    path.write_text(
        "customer_id,timestamp\nz1,2024-01-31 12:00:00+0100\nz2,2024-01-31 12:00:00 UTC\n"
    )
    report = ingest_file(store, path, "acme", timestamp_format="%Y-%m-%d %H:%M:%S%z")
    assert report.stored == 1 and [e.line for e in report.failed] == [3]
    [event] = store.iter_interactions("acme", "z1")
    assert event.occurred_at.isoformat() == "2024-01-31T11:00:00+00:00"
    report = ingest_file(store, path, "acme", timestamp_format="%Y-%m-%d %H:%M:%S %Z")
    assert report.stored == 1


def test_format_detection() -> None:
    assert detect_format("a.csv") == "csv"
    assert detect_format("a.CSV.gz") == "csv"
    assert detect_format("x/CDNOW_master.txt.gz") == "whitespace"
    assert detect_format("a.parquet") == "parquet"
    with pytest.raises(IngestError, match="--format"):
        detect_format("a.json")


def test_parquet(store: Store, tmp_path: Path) -> None:
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "events.parquet"
    table = pa.table(
        {
            "customer_id": [1, 2, None],
            "timestamp": [
                dt.datetime(2024, 1, 1),
                dt.datetime(2024, 1, 2),
                dt.datetime(2024, 1, 3),
            ],
            "value": [1.25, -1.0, 3.0],
        }
    )
    pq.write_table(table, path)
    report = ingest_file(store, path, "acme")
    assert report.stored == 2
    assert report.failed == [RowError(3, "missing customer id")]
    assert store.get_customer_summary("acme", "1").total_value == 1.25  # type: ignore[union-attr]
    # No outcome column: a negative amount is a refund.
    [refund] = store.iter_interactions("acme", "2")
    assert (refund.outcome, refund.value) == ("refund", -1.0)
    assert ingest_file(store, path, "acme").stored == 0


def _cli() -> click.Group:
    group = click.Group("nextbest")
    register_store_commands(group)
    return group


def test_ingest_command_exit_status_and_rejects(store: Store, sample: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    rejects = tmp_path / "rejects.csv"
    args = ["ingest", str(sample), "--tenant", "acme", "--database", store.url]
    result = runner.invoke(_cli(), [*args, "--reject-file", str(rejects)])
    assert result.exit_code == 1
    assert "stored: 3" in result.output and "rejected: 7" in result.output
    assert "line 4: bad timestamp 'not-a-date'" in result.output
    assert len(rejects.read_text().splitlines()) == 8

    good = tmp_path / "good.csv"
    good.write_text("customer_id,timestamp\nz1,2024-01-01\n")
    result = runner.invoke(
        _cli(), ["ingest", str(good), "--tenant", "acme", "--database", store.url]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        _cli(), ["ingest", str(good), "--tenant", "acme", "--database", store.url]
    )
    assert result.exit_code == 0 and "stored: 0, already stored: 1" in result.output

    result = runner.invoke(
        _cli(), ["ingest", str(good), "--tenant", "nobody", "--database", store.url]
    )
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(
        _cli(), ["ingest", str(good), "--tenant", "acme", "--database", store.url, "--no-header"]
    )
    assert result.exit_code == 1 and "--customer-col" in result.output


def test_ingest_command_source_option(store: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    first = tmp_path / "export-2024-01.csv"
    first.write_text("customer_id,timestamp,value\nz1,2024-01-01,5\n")
    base = ["--tenant", "acme", "--database", store.url, "--source", "shop-export"]
    result = runner.invoke(_cli(), ["ingest", str(first), *base])
    assert result.exit_code == 0 and "stored: 1," in result.output, result.output
    renamed = tmp_path / "export-2024-01-v2.csv"
    renamed.write_text("customer_id,timestamp,value\nz1,2024-01-01,5\nz2,2024-01-02,1\n")
    result = runner.invoke(_cli(), ["ingest", str(renamed), *base])
    assert "stored: 1, already stored: 1" in result.output, result.output
    help_text = runner.invoke(_cli(), ["ingest", "--help"]).output
    assert "--source" in help_text and "--timestamp-col date --value-col dollar_value" in help_text


def _require_cdnow() -> Path:
    path = CDNOW / "CDNOW_sample.txt"
    if not path.is_file():
        pytest.skip(
            f"CDNOW data not found at {CDNOW} (expected ../shared/data/cdnow from the repo)"
        )
    return path


def test_cdnow_sample(store: Store) -> None:
    path = _require_cdnow()
    report = ingest_file(store, path, "acme", **CDNOW_OPTIONS)  # type: ignore[arg-type]
    assert (report.rows_read, report.stored, report.failed) == (6919, 6919, [])
    columns = store.customer_summary_columns("acme")
    assert len(columns) == 2357
    assert int(columns.interactions.sum()) == 6919
    assert int(columns.conversions.sum()) == 6919
    assert columns.total_value.sum() == pytest.approx(
        sum(float(line.split()[4]) for line in path.read_text().splitlines() if line.strip())
    )
    again = ingest_file(store, path, "acme", **CDNOW_OPTIONS)  # type: ignore[arg-type]
    assert (again.stored, again.duplicates) == (0, 6919)


def test_cdnow_sample_through_the_command(store: Store) -> None:
    path = _require_cdnow()
    result = CliRunner().invoke(
        _cli(),
        [
            "ingest",
            str(path),
            "--tenant",
            "acme",
            "--database",
            store.url,
            "--no-header",
            "--customer-col",
            "1",
            "--timestamp-col",
            "3",
            "--value-col",
            "5",
            "--timestamp-format",
            "%Y%m%d",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rows read: 6919, stored: 6919" in result.output


def test_control_characters_in_ids_are_rejected_rows_on_both_stores(
    any_store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_text(
        "ok1 20240101 1 o1\na\x00b 20240101 1 o1\nok2 20240102 2 o\x00\nok3 20240103 3 o3\n",
        encoding="utf-8",
    )
    options = {"header": False, "customer_col": 1, "timestamp_col": 2, "value_col": 3}
    report = ingest_file(any_store, path, "acme", offer_col=4, timestamp_format="%Y%m%d", **options)
    assert [(e.line, e.reason) for e in report.failed] == [
        (2, "customer id must not contain control characters (U+0000 at position 2)"),
        (3, "offer id must not contain control characters (U+0000 at position 2)"),
    ]
    assert report.stored == 2
    assert list(any_store.customer_summary_columns("acme").customer_ids) == ["ok1", "ok3"]


def test_ingest_command_does_not_consume_budgets_or_stock(store: Store, tmp_path: Path) -> None:
    # imported conversions are history: the constraints limit live responses only (flows.md)
    store.put_offer("acme", {"id": "o1", "budget": {"daily": 5, "lifetime": 5}, "stock": 1})
    data = tmp_path / "sales.csv"
    data.write_text(
        "customer_id,timestamp,value,outcome,offer_id\n"
        "c1,2024-01-05,4,conversion,o1\nc2,2024-01-05,4,conversion,o1\n"
    )
    args = ["ingest", str(data), "--tenant", "acme", "--database", store.url]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    assert "stored: 2" in result.output
    assert store.offer_consumption("acme", date(2024, 1, 5)) == {}
    assert store.offer_consumption("acme", datetime.now(UTC).date()) == {}
    # the imported contacts are counted for the contact policies
    assert [c.conversions for c in store.get_contact_counts("acme", "c1")] == [1]
