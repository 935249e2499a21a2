"""Experiments: control groups and the lift they measure.

Pure code only (no store, no I/O): the control-group setting and the assignment rule
(:mod:`.control`), the lift statistics with their confidence intervals (:mod:`.lift`). The
store aggregates outcomes per group (``Store.lift_aggregates``); the API and the CLI turn those
aggregates into the lift report with :func:`.lift.lift_report`.
"""

from .control import (
    CONTROL,
    CONTROL_GROUP_SETTING,
    MAX_CONTROL_SHARE,
    TREATMENT,
    Assignment,
    ControlGroupSettings,
    assign,
    assignment_draw,
    control_group_problem,
    random_pick_seed,
)
from .lift import LIFT_WINDOW_DAYS, GroupTotals, LiftAggregates, OfferTotals, lift_report

__all__ = [
    "CONTROL",
    "CONTROL_GROUP_SETTING",
    "LIFT_WINDOW_DAYS",
    "MAX_CONTROL_SHARE",
    "TREATMENT",
    "Assignment",
    "ControlGroupSettings",
    "GroupTotals",
    "LiftAggregates",
    "OfferTotals",
    "assign",
    "assignment_draw",
    "control_group_problem",
    "lift_report",
    "random_pick_seed",
]
