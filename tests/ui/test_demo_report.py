"""The demo's report step (examples/demo.py, ``make demo``) leaves no page of the report empty:
two CLV snapshots at different dates, a stored back-test, a finished simulation with a
comparison and a retention campaign with a control group (Offers and Lift), on the CDNOW
sample."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from nextbest_clv.cli import parse_as_of
from nextbest_clv.service import service_for
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.history import list_all_snapshots

from nextbest import Host
from nextbest.simulate import list_simulations
from nextbest.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))


def test_the_demo_report_has_every_page_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import demo

    monkeypatch.delenv("NEXTBEST_PLUGINS", raising=False)
    store = open_store(f"sqlite:///{tmp_path / 'demo.db'}", pepper=b"demo")
    out = tmp_path / "report.html"
    try:
        store.upgrade()
        store.create_tenant(demo.TENANT, "CDNOW demo")
        before, after = demo.split_cdnow(demo.cdnow_sample(), tmp_path)
        host = Host(store=store)
        demo.ingest(store, before)
        demo.earlier_snapshot(host)
        demo.ingest(store, after)
        compute_records(service_for(host), demo.TENANT, as_of=parse_as_of(demo.AS_OF))
        demo.publish_retention(store)
        demo.report_demo(store, host, out)
        runs = list_simulations(store, demo.TENANT).items
        assert [r.status for r in runs] == ["done"]
        assert runs[0].inputs["compare"].startswith("retention-plain")
        # the earlier snapshot holds every customer who had bought by then (all of CDNOW's
        # first purchases are in 1997), not only those who bought nothing since
        counts = [snap["customers"] for snap in list_all_snapshots(store, demo.TENANT)]
        assert counts == [2357, 2357]
    finally:
        store.close()
    text = out.read_text(encoding="utf-8")
    for empty in (
        "No CLV snapshots yet",
        "A migration needs two snapshots",
        "No back-tests yet",
        "no simulation runs yet",
        "No run has finished yet",
        "has a control group in this window",
    ):
        assert empty not in text, empty
    # the demo's retention campaign: the offers were shown, and the lift page has both groups
    offers = re.search(r'<section class="nb-page" id="page-offers".*?</section>', text, re.S)
    assert offers is not None and re.search(r"<th scope=\"row\">new-releases</th>", offers[0])
    lift = re.search(r'<section class="nb-page" id="page-lift".*?</section>', text, re.S)
    assert lift is not None and "Flow retention, the last 30 days" in lift[0]
    assert "From 1998-03-31T00:00:00Z to 1998-06-30T00:00:00Z" in text  # the migration
    assert "Side by side: retention@1 and retention-plain@1" in text
    assert "bgnbd" in text
