"""Where counts live: one plugin document per offer holding its cells, and one per
recommendation naming the ranks already credited with a positive."""

from __future__ import annotations

import json
from typing import Any

#: plugin-document namespace of the counts: key = offer id, document {"cells": {cell: [n, k]}}
COUNTS = "adaptive.counts"
#: namespace of the credited impressions: key = recommendation id, document = sorted ranks
CREDITS = "adaptive.credits"
#: the annotation key the plugin writes under (the plugin's name)
NOTE = "adaptive"


def cell(channel: str | None, predictor: str | None = None, value: Any = None) -> str:
    """The label of a cell: the channel (``-`` when none) and, when a predictor splits it,
    ``|name=value`` with the value as JSON."""
    label = channel if channel is not None else "-"
    if predictor is None:
        return label
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return f"{label}|{predictor}={text}"


def item_cells(channel: str | None, note: Any) -> list[str]:
    """The cells an impression of an item counts in: its channel's, and the predictor's cell
    the decision used (from the item's annotation) when there was one."""
    cells = [cell(channel)]
    if isinstance(note, dict):
        split = note.get("cell")
        if isinstance(split, str) and split not in cells:
            cells.append(split)
    return cells
