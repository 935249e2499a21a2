"""The demo's learning step (examples/learning_demo.py) learns what it says it does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nextbest import Host
from nextbest.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))


def test_the_learning_demo_moves_the_propensities_to_the_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import learning_demo

    monkeypatch.delenv("NEXTBEST_PLUGINS", raising=False)
    store = open_store(f"sqlite:///{tmp_path / 'learn.db'}", pepper=b"demo")
    store.upgrade()
    try:
        learning_demo.learning_demo(store, Host(store=store))
    finally:
        store.close()
    lines = capsys.readouterr().out.splitlines()
    final = lines[lines.index("  after 600 recommendations:") + 1 :]
    rows = {line.split()[0]: line.split() for line in final if line.startswith("    ")}
    best = rows["free-shipping"]
    assert abs(float(best[2]) - 0.25) < 0.04  # learned, against a true 0.25
    shown = {offer: int(row[-2]) for offer, row in rows.items()}
    assert max(shown, key=shown.__getitem__) == "free-shipping"
    assert all(n > 0 for n in shown.values())  # the others were explored
