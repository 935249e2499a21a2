"""The nextbest + nextbest-clv demo (``make demo``).

1. ingests the CDNOW sample (2,357 CD buyers, 1997-01 to 1998-06) into a fresh SQLite file for
   tenant ``demo``: the purchases up to 1998-03-31 first, then a CLV snapshot as of that day
   (the report's history), then the rest;
2. batch computes every customer's CLV record as of 1998-06-30, with a progress bar, and prints
   the customers per segment;
3. runs the retention flow (examples/flows/retention.yaml) through the host, with the store
   attached, for customers from different segments, and explains each decision;
4. acts on a prediction: a trigger for valuable at-risk customers, with the retention flow
   attached, fires in the next batch; the firing goes through the outbox to a webhook receiver
   started on this machine, which checks the Standard Webhooks signature and prints what it got;
5. measures a flow's lift: a control group on the cross-sell flow for a simulated population with
   a known truth, and the lift table (examples/lift_demo.py; docs/learning.md);
6. learns propensities from outcomes: three offers with a guessed catalog propensity and a known
   true response rate, Thompson sampling over 600 recommend -> respond rounds, the learned
   propensities printed as they move towards the truth (examples/learning_demo.py);
7. writes the tenant's web report as one offline HTML file (docs/report.md) and prints its path;
   before it, a back-test of BG/NBD and a simulation comparing the retention flow with the
   same flow without its CLV rules are stored, so with step 1's snapshot every page of the
   report has something to show.

The database lives in a temporary directory that is removed at exit; ``--keep`` keeps it (its
path is printed) to look at with ``nextbest clv show ... --database sqlite:///PATH``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import importlib.util
import json
import random
import secrets
import shutil
import sys
import tempfile
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from learning_demo import learning_demo
from lift_demo import lift_demo
from nextbest_clv.backtest.runs import run_backtest
from nextbest_clv.cli import parse_as_of, print_result, progress_bar
from nextbest_clv.service import RECORDS_NAMESPACE, service_for
from nextbest_clv.service.batch_compute import compute_records

from nextbest import DecisionService, Host
from nextbest.documents import load_document
from nextbest.ingest import ingest_file
from nextbest.outbox import Deliverer, TargetPolicy, WebhookSettings, add_endpoint
from nextbest.simulate import parse_options, submit
from nextbest.store import InteractionIn, Store, from_epoch, open_store
from nextbest.triggers import engine_for
from nextbest.ui.export import export_report

ROOT = Path(__file__).resolve().parents[1]
TENANT = "demo"
AS_OF = "1998-06-30"
#: The as-of date of the earlier CLV snapshot (the report's history and migration).
EARLIER = "1998-03-31"


def cdnow_sample() -> Path:
    """The CDNOW sample file: from the installed ``lifetimes`` package, else the shared copy."""
    spec = importlib.util.find_spec("lifetimes")  # locate without importing (pandas etc.)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "datasets" / "CDNOW_sample.txt"
        if candidate.is_file():
            return candidate
    shared = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_sample.txt"
    if shared.is_file():
        return shared
    sys.exit(
        "The CDNOW sample was not found. Install the test extra (pip install -e '.[dev]', which "
        f"brings lifetimes and its copy of the data) or put CDNOW_sample.txt at {shared}."
    )


def ingest(store: Store, path: Path) -> None:
    """CDNOW columns: master id, sample id, YYYYMMDD date, CDs, dollar value (no header)."""
    state: dict[str, Any] = {}

    def on_start(total: int) -> None:
        state["bar"] = click.progressbar(length=total, label="Ingesting CDNOW", width=30)
        state["bar"].__enter__()

    report = ingest_file(
        store,
        path,
        TENANT,
        format="whitespace",
        header=False,
        customer_col=2,
        timestamp_col=3,
        value_col=5,
        timestamp_format="%Y%m%d",
        outcome="conversion",
        on_start=on_start,
        progress=lambda n: state["bar"].update(n),
    )
    state["bar"].__exit__(None, None, None)
    print(f"{report.stored} purchases stored ({len(report.failed)} rejected)")


def pick_customers(store: Store) -> list[tuple[str, str]]:
    """A few customers from different segments: at-risk with the most revenue, the best
    'high', a 'medium', and a 'low' one."""
    records = store.get_documents(RECORDS_NAMESPACE, TENANT)
    by_segment: dict[str, list[dict[str, Any]]] = {}
    for record in records.values():
        by_segment.setdefault(record["segment"], []).append(record)
    picks = []
    orders = {
        "at_risk": lambda r: -r["predictedRevenue"],
        "high": lambda r: -r["clvScore"],
        "medium": lambda r: -r["clvScore"],
        "low": lambda r: r["clvScore"],
    }
    for segment, key in orders.items():
        ranked = sorted(by_segment.get(segment, []), key=lambda r: (key(r), r["customerId"]))
        if ranked:
            picks.append((segment, ranked[0]["customerId"]))
    low_value_at_risk = sorted(by_segment.get("at_risk", []), key=lambda r: r["predictedRevenue"])
    if low_value_at_risk:
        picks.append(("at_risk (low value)", low_value_at_risk[0]["customerId"]))
    return picks


def explain(decision: dict[str, Any], record: dict[str, Any]) -> None:
    print(
        f"  CLV: score {record['clvScore']}, segment {record['segment']}, churn "
        f"{record['churnProbability']:.1%}, predicted revenue ${record['predictedRevenue']:,.2f} "
        f"(recency {record['rfmRecency']} d, {record['rfmFrequency']} purchases, "
        f"${record['rfmMonetary']:,.2f})"
    )
    for item in decision["decisions"]:
        fields = item["personalization"]
        head = f"  #{item['rank']} {item['offerId']:<13} score {item['score']:.4f}"
        print(f"{head}  {fields['headline']}")
    trace = decision["trace"]
    for drop in trace["dropped"]:
        where = f"rule {drop['ruleId']}" if drop["ruleId"] else f"node {drop['nodeId']}"
        print(f"     dropped {drop['offerId']:<13} [{where}] {drop['reason']}")
    for offer_id, adjustments in trace["fitAdjustments"].items():
        for adj in adjustments:
            print(f"     fit x{adj['multiplier']} {offer_id:<11} [{adj['ruleId']}] {adj['reason']}")
    for offer_id, score in trace["scores"].items():
        for term in score["terms"]:
            print(
                f"     {offer_id}: CLV adds {term['exponent']:.3f} to the {term['dimension']} "
                "exponent"
            )
            break
        break


class Receiver:
    """A webhook receiver on a loopback port that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/nextbest"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (Standard Webhooks): HMAC-SHA256 of ``id.timestamp.body`` with the
    secret's key, compared with each ``v1,`` signature."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(s.partition(",")[2], expected)
        for s in headers["webhook-signature"].split()
    )


def publish_retention(store: Store) -> dict[str, Any]:
    """The retention offers into the tenant's catalog and the retention flow published;
    returns the flow document."""
    for offer in load_document(ROOT / "examples" / "offers-retention.yaml")["offers"]:
        store.put_offer(TENANT, offer)
    flow = load_document(ROOT / "examples" / "flows" / "retention.yaml")
    store.publish_flow(TENANT, flow["key"], store.save_flow(TENANT, flow["key"], flow))
    store.set_default_flow(TENANT, flow["key"])  # what recommend and the report default to
    return flow


def split_cdnow(path: Path, workdir: Path) -> tuple[Path, Path]:
    """The CDNOW file in two: the purchases up to :data:`EARLIER` and the later ones, so the
    demo can store a true snapshot as of EARLIER before the later purchases arrive (a batch
    as of a past date scores the customers' summaries, which hold every purchase so far)."""
    cutoff = EARLIER.replace("-", "")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    before = [line for line in lines if line.split() and line.split()[2] <= cutoff]
    after = [line for line in lines if line.split() and line.split()[2] > cutoff]
    paths = (workdir / "cdnow-before.txt", workdir / "cdnow-after.txt")
    for out, part in zip(paths, (before, after), strict=True):
        out.write_text("".join(part), encoding="utf-8")
    return paths


def earlier_snapshot(host: Host) -> None:
    """A CLV snapshot as of :data:`EARLIER` (with the purchases up to then only), so the
    report's history has two to compare (the batch as of AS_OF stores the second)."""
    earlier, _ = compute_records(service_for(host), TENANT, as_of=parse_as_of(EARLIER))
    print(f"CLV snapshot as of {EARLIER} stored ({earlier.computed} customers)")


def trigger_demo(store: Store, host: Host) -> None:
    """Step 4: a trigger acts on the CLV records (see the module doc)."""
    flow = publish_retention(store)

    receiver = Receiver()
    policy = TargetPolicy(allow_private=True)  # the receiver is on this machine
    endpoint, secret = add_endpoint(
        store, policy, TENANT, receiver.url, description="demo receiver",
        event_types=["trigger.fired"],
    )  # fmt: skip
    # "Valuable": at least the predicted revenue of the most valuable at-risk customer today.
    at_risk = [r for r in store.get_documents(RECORDS_NAMESPACE, TENANT).values()
               if r["segment"] == "at_risk"]  # fmt: skip
    floor = max(r["predictedRevenue"] for r in at_risk)
    trigger = {
        "key": "valuable-at-risk",
        "name": "Valuable customers at risk of churning",
        "when": f"customer.clv.segment == 'at_risk' and customer.clv.predicted_revenue >= {floor}",
        "flow": flow["key"],
        "actions": {"webhook": endpoint.endpoint_id},
    }
    engine = engine_for(host)
    assert engine is not None
    # Triggers act on the present only (a batch as of a past date fires nothing); the demo's
    # data ends in 1998, so its present is AS_OF.
    engine.clock = lambda: parse_as_of(AS_OF)
    engine.put(TENANT, trigger["key"], trigger)
    print(f"\nTrigger {trigger['key']!r}: when {trigger['when']}")
    print(f"  webhook endpoint {endpoint.endpoint_id} -> {receiver.url}")

    compute_records(service_for(host), TENANT, as_of=parse_as_of(AS_OF))  # the next batch
    deliverer = Deliverer(store, WebhookSettings(policy=policy))
    try:
        sent = deliverer.drain()
    finally:
        deliverer.close()
    print(f"  the batch fired it; the deliverer sent {sent} request(s)")
    for headers, body in receiver.requests:
        event = json.loads(body)
        data = event["data"]
        check = "valid" if verified(secret, headers, body) else "INVALID"
        print(f"\nThe receiver got POST {urlsplit(receiver.url).path} (signature {check}):")
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            print(f"  {name}: {headers[name][:60]}")
        print(f"  {event['type']} for customer {data['customerId']} at {data['time']}:")
        for name, value in data["values"].items():
            print(f"    {name} = {value}")
        for offer in data.get("offers", []):
            print(
                f"    offer #{offer['rank']} {offer['offerId']} (recommendationId "
                f"{offer['recommendationId']}): {offer['personalization'].get('headline', '')}"
            )
    receiver.server.shutdown()


#: When the demo's retention campaign is decided (three weeks before AS_OF: inside the report's
#: 30-day lift window), for how many customers, and how often a treatment customer responds.
CAMPAIGN_AT = "1998-06-08"
CAMPAIGN_CUSTOMERS = 800
CAMPAIGN_RATES = {"click": 0.15, "conversion": 0.06}


def campaign_demo(store: Store, host: Host) -> None:
    """A retention campaign in the demo's past, so the report's Offers and Lift pages have
    something to show: a tenant control group (20 %, no offer), the retention flow decided
    for CAMPAIGN_CUSTOMERS customers on CAMPAIGN_AT, each offer shown recorded as an
    impression, and some treatment customers clicking or buying what was offered first
    (seeded). Control customers get nothing; their own CDNOW purchases are their outcomes."""
    store.update_tenant_settings(
        TENANT, {"controlGroup": {"share": 0.2, "salt": "demo-1998", "mode": "none"}}
    )
    service = DecisionService(host, store)
    decided = from_epoch(parse_as_of(CAMPAIGN_AT))
    rng = random.Random(1998)
    customers = sorted(store.customer_summaries(TENANT))[:CAMPAIGN_CUSTOMERS]
    counts = {"control": 0, "impression": 0, "click": 0, "conversion": 0}
    for customer in customers:
        saved = service.recommend(
            TENANT, {"customerId": customer, "channel": "email", "asOf": decided.isoformat()}
        )
        if saved.decision.group == "control":
            counts["control"] += 1
        items = saved.decision.items
        events = [("impression", item.rank, 0.0, 0.01) for item in items]
        if items and rng.random() < CAMPAIGN_RATES["click"]:
            events.append(("click", 1, 0.0, rng.uniform(0.1, 3.0)))
            if rng.random() < CAMPAIGN_RATES["conversion"] / CAMPAIGN_RATES["click"]:
                events.append(("conversion", 1, round(rng.uniform(20, 120), 2), 3.5))
        for outcome, rank, value, days in events:
            counts[outcome] += 1
            service.record_outcome(
                TENANT,
                InteractionIn(
                    customer_id=customer,
                    outcome=outcome,
                    idempotency_key=f"campaign-{saved.recommendation_id}-{rank}-{outcome}",
                    recommendation_id=saved.recommendation_id,
                    rank=rank,
                    value=value,
                    occurred_at=decided + timedelta(days=days),
                ),
            )
    print(
        f"\nRetention campaign on {CAMPAIGN_AT}: {len(customers)} customers, "
        f"{counts['control']} in the control group (no offer); {counts['impression']} offers "
        f"shown, {counts['click']} clicks, {counts['conversion']} conversions"
    )


def report_demo(store: Store, host: Host, out: Path | None = None) -> None:
    """Step 7: a stored back-test and a stored simulation with a comparison, then the web
    report of the demo tenant as one offline file (what `nextbest report` writes); kept after
    the demo, its path printed."""
    campaign_demo(store, host)
    service = service_for(host)
    # Run "at" AS_OF, the demo's present: the report as of AS_OF lists runs made by then.
    run_backtest(
        store, TENANT, "bgnbd", service.get_settings(TENANT), clock=lambda: parse_as_of(AS_OF)
    )
    print("\nA back-test of BG/NBD stored (the report's predicted vs actual page)")
    flow = load_document(ROOT / "examples" / "flows" / "retention.yaml")
    plain = {**flow, "key": "retention-plain", "name": "Retention without the CLV rules",
             "nodes": [n for n in flow["nodes"] if n["id"] != "clv-rules"]}  # fmt: skip
    store.publish_flow(TENANT, plain["key"], store.save_flow(TENANT, plain["key"], plain))
    as_of = from_epoch(parse_as_of(AS_OF))
    options = parse_options(
        {"flow": flow["key"], "compare": plain["key"], "asOf": as_of.isoformat()}, now=as_of
    )
    run = submit(DecisionService(host, store), TENANT, options, background=False)
    done = store.get_simulation(TENANT, run.simulation_id)
    assert done is not None
    if done.status != "done":
        raise SystemExit(f"the demo simulation {run.simulation_id} failed: {done.error}")
    print(f"Simulation {run.simulation_id} stored: {flow['key']} compared with {plain['key']}")
    out = out or Path(tempfile.gettempdir()) / "nextbest-demo-report.html"
    out.write_text(export_report(host, TENANT, from_epoch(parse_as_of(AS_OF))), encoding="utf-8")
    print(f"\nThe web report as of {AS_OF}, one file that opens offline: {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The nextbest + nextbest-clv demo.")
    parser.add_argument(
        "--keep", action="store_true", help="keep the demo database instead of removing it"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="nextbest-demo-"))
    try:
        run(workdir / "demo.db")
    finally:
        if args.keep:
            print(f"\nDemo database kept: {workdir / 'demo.db'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(database: Path) -> None:
    """The demo on a fresh SQLite database at ``database``."""
    print(f"Fresh database: {database}")
    # A throwaway database: a pepper of its own for the keys and webhook secrets it holds.
    store = open_store(f"sqlite:///{database}", pepper=secrets.token_bytes(32))
    try:
        store.upgrade()
        store.create_tenant(TENANT, "CDNOW demo")
        before, after = split_cdnow(cdnow_sample(), database.parent)
        host = Host(store=store)
        service = service_for(host)
        ingest(store, before)
        earlier_snapshot(host)
        ingest(store, after)
        progress, close = progress_bar("Computing CLV")
        try:
            result = service.compute_batch(TENANT, as_of=parse_as_of(AS_OF), progress=progress)
        finally:
            close()
        print_result(result)

        flow = host.load_flow(ROOT / "examples" / "flows" / "retention.yaml")
        offers = host.load_offers(ROOT / "examples" / "offers-retention.yaml")
        print(f"\nRetention flow {flow.key!r} as of {AS_OF}:")
        for segment, customer in pick_customers(store):
            request = {
                "customerId": customer,
                "channel": "email",
                "asOf": f"{AS_OF}T00:00:00Z",
                "explain": True,
            }
            decision = host.decide(TENANT, request, flow=flow, offers=offers).to_dict()
            print(f"\ncustomer {customer} ({segment})")
            # The record the decision used: as of the decision's asOf (the batch's record).
            explain(decision, service.get(TENANT, customer, as_of=parse_as_of(AS_OF)))
        trigger_demo(store, host)
        lift_demo(store, host, ROOT)
        learning_demo(store, host)
        report_demo(store, host)
    finally:
        store.close()


if __name__ == "__main__":
    main()
