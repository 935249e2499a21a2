"""Bulk import: the layout of rows (field counts, headers, delimiters, decimal commas), refunds
and natural keys (``--id-col``), through ``ingest_file`` and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from nextbest.commands.store import register_store_commands
from nextbest.ingest import ID_KEY_PREFIX, IngestError, RowError, ingest_file
from nextbest.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'ingest.db'}", pepper=b"p") as store:
        store.upgrade()
        store.create_tenant("acme")
        yield store


def _cli() -> click.Group:
    group = click.Group("nextbest")
    register_store_commands(group)
    return group


def _ingest(store: Store, path: Path, *options: str) -> Result:
    args = ["ingest", str(path), "--tenant", "acme", "--database", store.url, *options]
    return CliRunner().invoke(_cli(), args)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _total(store: Store, customer: str) -> float:
    summary = store.get_customer_summary("acme", customer)
    assert summary is not None
    return summary.total_value


# -- field counts ------------------------------------------------------------------------------


def test_a_row_with_more_fields_than_the_header_is_rejected(store: Store, tmp_path: Path) -> None:
    """An unquoted decimal comma splits the value: 15,50 must not be stored as 15.0."""
    path = _write(
        tmp_path,
        "orders.csv",
        "customer_id,timestamp,value,currency,channel\n"
        "c1,2024-01-01,15,50,EUR,web\n"
        "c2,2024-01-01,20,EUR\n"
        "c3,2024-01-01,7.5,EUR,web\n",
    )
    report = ingest_file(store, path, "acme", channel_col="channel")
    assert report.failed == [
        RowError(
            2,
            "has 6 fields, the header has 5 (a decimal comma or a delimiter inside an unquoted "
            "value?)",
        ),
        RowError(3, "has 4 fields, the header has 5"),
    ]
    assert store.get_customer_summary("acme", "c1") is None
    assert _total(store, "c3") == 7.5
    result = _ingest(store, path)
    assert result.exit_code == 1 and "line 2: has 6 fields, the header has 5" in result.stderr


def test_without_a_header_the_first_row_sets_the_field_count(store: Store, tmp_path: Path) -> None:
    path = _write(
        tmp_path, "rows.txt", "a 20240101 1\nb 20240102 2 extra\nc 20240103\nd 20240104 4\n"
    )
    report = ingest_file(
        store,
        path,
        "acme",
        header=False,
        customer_col=1,
        timestamp_col=2,
        value_col=3,
        timestamp_format="%Y%m%d",
    )
    assert report.failed == [
        RowError(
            2,
            "has 4 fields, line 1 has 3 (a decimal comma or a delimiter inside an unquoted value?)",
        ),
        RowError(3, "has 2 fields, line 1 has 3"),
    ]
    assert report.stored == 2
    with pytest.raises(IngestError, match="--value-col 4: the first row has 3 fields"):
        ingest_file(store, path, "acme", header=False, customer_col=1, timestamp_col=2, value_col=4)


# -- headers -----------------------------------------------------------------------------------


def test_a_file_without_header_read_with_one_stops_before_storing(
    store: Store, tmp_path: Path
) -> None:
    """Its first row would silently become the header (and be lost)."""
    named = _write(tmp_path, "named.csv", "c1,2024-01-05T10:00:00Z,10\nc2,2024-01-06,5\n")
    expected = (
        "line 1 is read as the header but looks like data (its field 2 "
        "('2024-01-05T10:00:00Z') is a time): if the file has no header, pass --no-header"
    )
    with pytest.raises(IngestError, match=re.escape(expected)):
        ingest_file(store, named, "acme")
    sample = " 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n"
    positions = _write(tmp_path, "sample.txt", sample)
    options = {"customer_col": 1, "timestamp_col": 3, "value_col": 5, "timestamp_format": "%Y%m%d"}
    with pytest.raises(IngestError, match=r"its field 3 \('19970101'\) is a time"):
        ingest_file(store, positions, "acme", **options)  # type: ignore[arg-type]
    value_only = _write(tmp_path, "v.csv", "c1,x,12.5\nc2,y,3\n")
    with pytest.raises(IngestError, match=r"its field 3 \('12.5'\) is a number"):
        ingest_file(store, value_only, "acme", customer_col=1, timestamp_col=2, value_col=3)
    assert store.customer_summary_columns("acme").customer_ids.size == 0
    report = ingest_file(store, positions, "acme", header=False, **options)  # type: ignore[arg-type]
    assert report.stored == 2

    result = _ingest(store, named)
    assert result.exit_code == 1 and "pass --no-header" in result.output
    assert "Traceback" not in result.output


def test_no_header_on_a_file_with_one_stops(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path, "h.csv", "customer_id,timestamp,value\nc1,2024-01-05,10\n")
    expected = (
        "line 1 looks like a header, not data: its time column holds 'timestamp', line 2 a "
        "time. Leave out --no-header"
    )
    with pytest.raises(IngestError, match=re.escape(expected)):
        ingest_file(store, path, "acme", header=False, customer_col=1, timestamp_col=2)
    result = _ingest(store, path, "--no-header", "--customer-col", "1", "--timestamp-col", "2")
    assert result.exit_code == 1 and "Leave out --no-header" in result.output
    assert store.get_customer_summary("acme", "c1") is None


def test_a_header_of_one_field_suggests_the_delimiter(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path, "semi.csv", "customer_id;timestamp;value\nc1;2024-01-05;10\n")
    with pytest.raises(IngestError, match="pass --delimiter ';'"):
        ingest_file(store, path, "acme")


def test_a_column_named_twice_must_be_given_by_position(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path, "twice.csv", "customer_id,timestamp,value,value\nc1,2024-01-05,1,2\n")
    with pytest.raises(IngestError, match=r"names 2 columns 'value' \(fields 3, 4\)"):
        ingest_file(store, path, "acme")
    assert ingest_file(store, path, "acme", value_col=4).stored == 1
    assert _total(store, "c1") == 2


# -- delimiters and decimal commas -------------------------------------------------------------


def test_delimiter_and_decimal_comma(store: Store, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "export.csv",
        "customer_id;timestamp;value\n"
        "c1;2024-01-05;15,50\n"
        "c2;2024-01-05;1.234,56\n"
        "c3;2024-01-05;1_000\n"
        'c4;2024-01-05;"7"\n',
    )
    report = ingest_file(store, path, "acme", delimiter=";", decimal=",")
    assert report.failed == [
        RowError(
            3,
            "value '1.234,56' is not a number with decimal separator ',' (thousands "
            "separators are not accepted)",
        ),
        RowError(4, "value '1_000' is not a number"),
    ]
    assert (_total(store, "c1"), _total(store, "c4")) == (15.5, 7.0)
    point = ingest_file(store, path, "acme", delimiter=";", source="again")
    assert point.failed[0] == RowError(
        2, "value '15,50' is not a number (pass --decimal , for decimal commas)"
    )
    result = _ingest(store, path, "--delimiter", ";", "--decimal", ",", "--source", "cli")
    assert result.exit_code == 1 and "stored: 2," in result.stdout
    assert _total(store, "c1") == 31.0  # the second import under another source


def test_quoted_decimal_commas_with_a_comma_delimiter(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path, "q.csv", 'customer_id,timestamp,value\nc1,2024-01-05,"15,50"\n')
    assert ingest_file(store, path, "acme", decimal=",").ok
    assert _total(store, "c1") == 15.5


@pytest.mark.parametrize("spelled", ["\\t", "tab", "\t"])
def test_tab_delimiter(store: Store, tmp_path: Path, spelled: str) -> None:
    path = _write(tmp_path, "t.txt", "customer_id\ttimestamp\tvalue\nc1\t2024-01-05\t2\n")
    assert ingest_file(store, path, "acme", delimiter=spelled).stored == 1


def test_tsv_keeps_empty_cells_in_place(store: Store, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.tsv",
        "customer_id\ttimestamp\tvalue\tchannel\nc1\t2024-01-05\t\tweb\nc2\t2024-01-05\t3\t\n",
    )
    report = ingest_file(store, path, "acme")
    assert report.ok and report.stored == 2
    [first] = store.iter_interactions("acme", "c1")
    assert (first.value, first.channel) == (0.0, "web")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": "ab"}, "must be one character"),
        ({"delimiter": '"'}, "cannot separate fields"),
        ({"delimiter": ";", "format": "whitespace"}, "does not apply to --format whitespace"),
        ({"decimal": ";"}, "must be '.' or ','"),
        ({"negative_values": "keep"}, "must be one of refund, reject"),
    ],
)
def test_unusable_layout_options(
    store: Store, tmp_path: Path, options: dict[str, str], message: str
) -> None:
    path = _write(tmp_path, "x.csv", "customer_id,timestamp\nc1,2024-01-05\n")
    with pytest.raises(IngestError, match=message):
        ingest_file(store, path, "acme", **options)  # type: ignore[arg-type]


# -- refunds -----------------------------------------------------------------------------------

SHOP = """order_id,customer_id,timestamp,amount
A1,ann,2024-01-05T10:00:00Z,49.90
A2,bob,2024-01-06T09:00:00Z,15.00
R1,ann,2024-01-20T12:00:00Z,-19.99
A3,ann,2024-02-01T08:00:00Z,10.00
"""


def test_negative_amounts_without_an_outcome_column_are_refunds(
    any_store: Store, tmp_path: Path
) -> None:
    path = _write(tmp_path, "shop.csv", SHOP)
    report = ingest_file(any_store, path, "acme", value_col="amount")
    assert report.ok and report.stored == 4
    ann = any_store.get_customer_summary("acme", "ann")
    assert ann is not None
    assert (ann.conversions, ann.interactions) == (2, 3)  # a refund is not a purchase
    assert ann.total_value == pytest.approx(49.90 - 19.99 + 10.00)
    refunds = [e for e in any_store.iter_interactions("acme", "ann") if e.outcome == "refund"]
    assert [(e.value, e.classification) for e in refunds] == [(-19.99, "negative")]

    strict = ingest_file(
        any_store, path, "acme", value_col="amount", negative_values="reject", source="strict"
    )
    assert strict.failed == [
        RowError(
            4,
            "value '-19.99' must be >= 0 (to record negative amounts as refunds, pass "
            "--negative-values refund)",
        ),
    ]


def test_negative_amounts_with_an_outcome_column(store: Store, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "events.csv",
        "customer_id,timestamp,value,outcome\n"
        "ann,2024-01-05,49.90,conversion\n"
        "ann,2024-01-06,-9.90,conversion\n"
        "ann,2024-01-07,-5,refund\n"
        "ann,2024-01-08,5,refund\n"
        "ann,2024-01-09,-1,click\n",
    )
    report = ingest_file(store, path, "acme")
    assert [(e.line, e.reason) for e in report.failed] == [
        (
            3,
            "value '-9.90' must be >= 0 (to record negative amounts as refunds, pass "
            "--negative-values refund)",
        ),
        (5, "value '5' must be <= 0 for a refund: send the amount returned as a negative number"),
        (6, "value '-1' must be >= 0"),
    ]
    assert _total(store, "ann") == pytest.approx(44.90)
    result = _ingest(store, path, "--negative-values", "refund")
    assert result.exit_code == 1 and "stored: 1," in result.stdout  # -9.90 as a refund
    assert _total(store, "ann") == pytest.approx(35.00)


# -- natural keys --------------------------------------------------------------------------------


def test_a_corrected_export_replaces_rows_by_order_id(any_store: Store, tmp_path: Path) -> None:
    first = _write(tmp_path, "orders-2024-02-01.csv", SHOP)
    report = ingest_file(any_store, first, "acme", value_col="amount", id_col="order_id")
    assert (report.stored, report.replaced, report.failed) == (4, 0, [])
    stored = any_store.get_interaction("acme", f"{ID_KEY_PREFIX}conversion:A1")
    assert stored is not None and stored.value == 49.90
    assert any_store.get_interaction("acme", f"{ID_KEY_PREFIX}refund:R1") is not None

    # The next export, under another file name: A1 corrected, A3 left out, A4 new.
    corrected = _write(
        tmp_path,
        "orders-2024-02-02.csv",
        SHOP.replace(
            "A1,ann,2024-01-05T10:00:00Z,49.90", "A1,ann,2024-01-05T10:00:00Z,39.90"
        ).replace("A3,ann,2024-02-01T08:00:00Z,10.00\n", "")
        + "A4,bob,2024-02-02T08:00:00Z,5.00\n",
    )
    report = ingest_file(any_store, corrected, "acme", value_col="amount", id_col="order_id")
    assert (report.stored, report.duplicates, report.replaced) == (1, 2, 1)
    # A3 is not deleted by leaving it out: it stays, summaries count it.
    assert _total(any_store, "ann") == pytest.approx(39.90 - 19.99 + 10.00)
    ann = any_store.get_customer_summary("acme", "ann")
    assert ann is not None and (ann.conversions, ann.interactions) == (2, 3)
    assert _total(any_store, "bob") == pytest.approx(20.00)
    again = ingest_file(any_store, corrected, "acme", value_col="amount", id_col="order_id")
    assert (again.stored, again.duplicates, again.replaced) == (0, 4, 0)

    if any_store.url.startswith("sqlite"):  # the command reaches a database by URL alone
        result = _ingest(any_store, corrected, "--value-col", "amount", "--id-col", "order_id")
        assert result.exit_code == 0, result.output
        assert "stored: 0, already stored: 4, replaced: 0, rejected: 0" in result.stdout


def test_an_id_twice_in_one_file_is_rejected(any_store: Store, tmp_path: Path) -> None:
    """Line items of one order would overwrite each other: only the first row is kept."""
    path = _write(
        tmp_path,
        "items.csv",
        "order_id,customer_id,timestamp,value\n"
        "A1,ann,2024-01-05,10\n"
        "A1,ann,2024-01-05,10\n"
        "A1,ann,2024-01-05,-10\n"
        ",ann,2024-01-05,1\n"
        "A\x01,ann,2024-01-05,1\n"
        f"{'9' * 240},ann,2024-01-05,1\n",
    )
    report = ingest_file(any_store, path, "acme", id_col="order_id")
    assert report.failed == [
        RowError(
            3,
            "order_id 'A1' (conversion) is already on line 2: one row per id and "
            "outcome (sum an order's lines into one row)",
        ),
        RowError(5, "missing order_id"),
        RowError(6, "order_id must not contain control characters (U+0001 at position 2)"),
        RowError(
            7,
            f"order_id '{'9' * 34}...9' is too long to identify a row: at most 235 "
            "characters with outcome 'conversion'",
        ),
    ]
    assert report.stored == 2  # A1 and its refund
    assert _total(any_store, "ann") == 0


def test_id_keys_by_position_without_header(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path, "o.txt", "A1 ann 20240105 10\nA2 bob 20240106 5\n")
    options = {"header": False, "customer_col": 2, "timestamp_col": 3, "value_col": 4}
    report = ingest_file(store, path, "acme", id_col=1, timestamp_format="%Y%m%d", **options)  # type: ignore[arg-type]
    assert report.stored == 2
    assert store.get_interaction("acme", f"{ID_KEY_PREFIX}conversion:A2") is not None
    path.write_text("A1 ann 20240105 10\nA2 bob 20240106 5 x\n")
    report = ingest_file(store, path, "acme", id_col=1, timestamp_format="%Y%m%d", **options)  # type: ignore[arg-type]
    assert report.failed == [
        RowError(
            2,
            "has 5 fields, line 1 has 4 (a decimal comma or a delimiter inside an unquoted value?)",
        )
    ]


def test_a_row_left_out_of_an_export_is_deleted_by_its_key(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path, "shop.csv", SHOP)
    ingest_file(store, path, "acme", value_col="amount", id_col="order_id")
    args = ["interactions", "delete", f"{ID_KEY_PREFIX}conversion:A3", "--tenant", "acme"]
    result = CliRunner().invoke(_cli(), [*args, "--yes", "--database", store.url])
    assert result.exit_code == 0, result.output
    assert _total(store, "ann") == pytest.approx(49.90 - 19.99)
