"""Reading flow and offer documents from YAML or JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import FlowIssue, FlowValidationError


def load_document(path: str | Path) -> Any:
    """Parse a .yaml/.yml/.json file; syntax errors become a FlowValidationError with the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowValidationError(
            [FlowIssue("", f"cannot read file: {exc}")], source=str(path)
        ) from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        issue = FlowIssue(f"line {exc.lineno}", f"invalid JSON: {exc.msg}")
        raise FlowValidationError([issue], source=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise FlowValidationError(
            [FlowIssue(where, f"invalid YAML: {problem}")], source=str(path)
        ) from None
