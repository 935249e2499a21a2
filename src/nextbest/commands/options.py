"""Parsing command-line values, shared by the host's commands and plugins' commands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..documents import DocumentSyntaxError, parse_json
from ..store import document_problem, parse_time


def option_value(key: str, text: str, param_hint: str) -> Any:
    """The value of a ``KEY=VALUE`` option: JSON when ``text`` parses as JSON, else ``text``
    itself (``tier=gold``). A value the store could not hold (nested too deep, ``NaN``, an
    integer outside 64 bits, a lone surrogate) is a click.BadParameter naming ``key``."""
    try:
        value = parse_json(text)
    except DocumentSyntaxError as exc:
        if exc.too_deep:
            raise click.BadParameter(f"{key}: {exc}", param_hint=param_hint) from None
        return text
    problem = document_problem(value)
    if problem is not None:
        raise click.BadParameter(f"{key}: the value {problem}", param_hint=param_hint)
    return value


def time_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """A click callback: an ISO-8601 option as an aware UTC datetime (None when not given); a
    bad time is a usage error naming the option."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
