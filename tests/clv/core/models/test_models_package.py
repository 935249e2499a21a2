"""The models package is pure: its public API imports neither the host nor pandas/lifetimes."""

from __future__ import annotations

import subprocess
import sys

import nextbest_clv.core.models as models


def test_every_exported_name_exists() -> None:
    missing = [name for name in models.__all__ if not hasattr(models, name)]
    assert missing == []
    assert issubclass(models.FitError, ValueError) and issubclass(models.DataError, ValueError)


def test_import_pulls_in_no_host_pandas_or_lifetimes() -> None:
    code = (
        "import sys, nextbest_clv.core.models; "
        "print(*[m in sys.modules for m in ('nextbest', 'pandas', 'lifetimes')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
