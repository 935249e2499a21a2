"""Learned propensities (the adaptive plugin): decision and respond overhead, as ratios against
baselines measured in the same run.

- The 50-offer decision of benchmarks/decide.py (4 rules per offer, 2 computed fields, PRIE,
  top 5; no store I/O in the timed loop) with learned propensities (``mean`` and ``thompson``,
  split by a segment predictor, the counts of a matured tenant) vs the same flow with catalog
  propensities (target <= 1.3x), without and with a contact policy (a daily frequency_cap,
  the same on both sides; issue 13 §5 names the policy).
- respond (a conversion citing a stored recommendation, the plugin's costliest case: the
  counts and credit documents updated inside the outcome's transaction; the recommendation was
  saved by this process, so it is not read back) with the plugin loaded vs without, on SQLite
  (target <= 1.2x).
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

N_OFFERS = 50
TENANT = "bench"
RESPONDS = 300


def flow(key: str, adaptive: dict[str, Any] | None) -> dict[str, Any]:
    score: dict[str, Any] = {"method": "formula"}
    if adaptive is not None:
        score["adaptive"] = adaptive
    return {
        "key": key,
        "version": 2,
        "nodes": [
            {"type": "inventory", "id": "inv"},
            {"type": "score", "id": "s", "config": score},
            {"type": "rank", "id": "r", "config": {"maxCandidates": 5}},
        ],
    }


def offers() -> list[dict[str, Any]]:
    return [
        {
            "id": f"offer-{i:02d}",
            "category": f"cat-{i % 5}",
            "priority": 10 + i,
            "businessValue": 20 + 7 * i,
            "propensity": 0.05 + (i % 10) / 20,
        }
        for i in range(N_OFFERS)
    ]


def interleaved(fns: list[Any], rounds: int = 7, clock: Any = time.perf_counter) -> list[float]:
    """Best time of each function, run in turn so all see the same machine load."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            best[i] = min(best[i], clock() - t0)
    return best


def decisions(store: Any) -> None:
    from decide import documents  # the 50-offer decision benchmark's offers, flow and request

    from nextbest import DecisionRequest, Host
    from nextbest.models.policies import PolicyCounts, PolicyInputs
    from nextbest.policies.documents import parse_policy

    host = Host(store=store)
    offer_docs, flow_doc, request_doc = documents()
    catalog = host.load_offers(offer_docs)
    # a matured tenant: every offer has 2,000 impressions in each segment cell
    cells = {}
    for i, offer in enumerate(offer_docs):
        doc = {"web": [4000, 400 + 10 * i]}
        for seg in ("retail", "premium"):
            doc[f'web|attributes.segment="{seg}"'] = [2000, 200 + 5 * i]
        cells[offer["id"]] = {"cells": doc}
    store.put_documents("adaptive.counts", TENANT, cells)

    def variant(adaptive: dict[str, Any] | None) -> Any:
        doc = copy.deepcopy(flow_doc)
        if adaptive is not None:
            score = next(n for n in doc["nodes"] if n["type"] == "score")
            score["config"]["adaptive"] = {**adaptive, "predictor": "attributes.segment"}
        return host.load_flow(doc)

    flows = {
        "catalog": variant(None),
        "mean": variant({"mode": "mean"}),
        "thompson": variant({"mode": "thompson"}),
    }
    request_doc["attributes"]["segment"] = "retail"
    request = DecisionRequest.model_validate(request_doc)
    n = 200
    # a contact policy (a daily frequency cap, not blocking: every offer still scored) with the
    # counts a service would have read for the customer
    cap = parse_policy(
        {"name": "cap", "ruleType": "frequency_cap", "config": {"max": 50, "period": "day"}}
    )
    policy = PolicyInputs((cap,), PolicyCounts({"day": {"impressions": 3}}, {}, {}))

    def run(key: str, policies: PolicyInputs | None) -> Any:
        def loop() -> None:
            for _ in range(n):
                host.decide(TENANT, request, flow=flows[key], offers=catalog, policies=policies)

        return loop

    print(f"decision: {N_OFFERS} offers x 4 rules + 2 computed fields, PRIE, top 5 (decide.py)")
    for title, policies in (("no contact policy", None), ("a frequency_cap policy", policy)):
        catalog_s, mean_s, thompson_s = (
            t / n for t in interleaved([run(k, policies) for k in flows])
        )
        print(
            f"  {title}, catalog propensities: {catalog_s * 1e6:,.0f} us ({1 / catalog_s:,.0f}/s)"
        )
        for label, seconds in (("learned, mean", mean_s), ("learned, thompson", thompson_s)):
            print(
                f"  {title}, {label}: {seconds * 1e6:,.0f} us ({1 / seconds:,.0f}/s), "
                f"ratio {seconds / catalog_s:.2f} (target <= 1.3)"
            )


def responds(store: Any) -> None:
    from nextbest import DecisionService, Host
    from nextbest.store import InteractionIn

    os.environ["NEXTBEST_PLUGINS"] = "builtin"
    plain = DecisionService(Host(store=store), store)
    os.environ["NEXTBEST_PLUGINS"] = "builtin,adaptive"
    learning = DecisionService(Host(store=store), store)
    version = store.save_flow(TENANT, "learned", flow("learned", {"mode": "mean"}))
    store.publish_flow(TENANT, "learned", version)
    rounds = 9
    recs = [
        learning.recommend(TENANT, {"customerId": f"c{i}", "channel": "web"})
        for i in range(2 * rounds * RESPONDS)
    ]
    chunks = iter(range(2 * rounds))

    def run(service: Any) -> Any:
        def loop() -> None:
            chunk = next(chunks)
            for rec in recs[chunk * RESPONDS : (chunk + 1) * RESPONDS]:
                service.record_outcome(
                    TENANT,
                    InteractionIn(
                        customer_id=rec.decision.customer_id,
                        outcome="conversion",
                        idempotency_key=uuid.uuid4().hex,
                        recommendation_id=rec.recommendation_id,
                        rank=1,
                        value=10.0,
                    ),
                )

        return loop

    timed = interleaved([run(plain), run(learning)], rounds)
    plain_s, learning_s = (t / RESPONDS for t in timed)
    print("respond: a conversion citing a stored recommendation (SQLite)")
    print(f"  without the plugin: {plain_s * 1e3:.2f} ms")
    print(
        f"  with the plugin: {learning_s * 1e3:.2f} ms, ratio {learning_s / plain_s:.2f} "
        "(target <= 1.2)"
    )


def main() -> None:
    os.environ["NEXTBEST_PLUGINS"] = "builtin,adaptive"
    from nextbest.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'adaptive.db'}", pepper=b"bench")
        store.upgrade()
        store.create_tenant(TENANT)
        for offer in offers():
            store.put_offer(TENANT, offer)
        decisions(store)
        responds(store)
        store.close()


if __name__ == "__main__":
    main()
