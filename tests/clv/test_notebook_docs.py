"""docs/notebooks.md: its Python blocks run, in order, as one program, and give what the page
says."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "notebooks.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tempfile.mkdtemp", lambda: str(tmp_path))
    blocks = PYTHON_BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "notebooks_doc"}
    exec(compile("\n".join(blocks), DOC.name, "exec"), namespace)
    summaries, records = namespace["summaries"], namespace["records"]
    assert isinstance(summaries, pd.DataFrame) and len(summaries) == 2357
    assert isinstance(records, pd.DataFrame) and len(records) == 2357
    assert set(records["model"]) == {"bgnbd"} and records["clv"].notna().all()
    backtests, fits = namespace["backtests"], namespace["fits"]
    assert isinstance(backtests, pd.DataFrame) and backtests["model"].tolist() == ["bgnbd"]
    assert isinstance(fits, pd.DataFrame) and fits["version"].tolist() == [1]
    decisions = namespace["decisions"]
    assert isinstance(decisions, pd.DataFrame)
    assert decisions["error"].isna().all() and decisions["offer_id"].notna().all()
    assert decisions["customer_id"].nunique() == 7
    assert {"winback", "new-releases"} == set(decisions["offer_id"])
    why = namespace["why"]
    assert isinstance(why, list) and [d["ruleId"] for d in why] == ["likely-gone"]
