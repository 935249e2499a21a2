"""Regular expressions of ``regex`` conditions, matched in time linear in the value's length.

Patterns are compiled by RE2 (the ``google-re2`` bindings), which matches with automata and
never backtracks: ``(a|a)*$``, ``(a+)+$`` or ``^(.*)(.*)(.*)!$`` cost the same as ``a*$``.
RE2 refuses what it cannot match in linear time (backreferences such as ``\\1``, lookaround
such as ``(?=...)``) when the pattern is compiled, so those are load errors.

Linear still depends on the size of the compiled pattern: the automaton's work per character
grows with its number of instructions. A pattern is refused when it is longer than
:data:`MAX_PATTERN_LENGTH` characters or compiles to more than :data:`MAX_PROGRAM_SIZE`
instructions, and values longer than :data:`MAX_REGEX_INPUT` characters fail the condition
without being matched. Together these bound one match to a few milliseconds on any value
(``benchmarks/regex.py`` measures the worst patterns the limits let through).
"""

from __future__ import annotations

import re2

__all__ = [
    "MAX_PATTERN_LENGTH",
    "MAX_PROGRAM_SIZE",
    "MAX_REGEX_INPUT",
    "Pattern",
    "compile_pattern",
]

#: Longest text a ``regex`` condition is matched against; longer values fail the condition.
MAX_REGEX_INPUT = 1000
#: Longest pattern accepted, in characters.
MAX_PATTERN_LENGTH = 1000
#: Most instructions a compiled pattern may have (forwards and backwards): with values of at
#: most MAX_REGEX_INPUT characters this keeps the worst match to a few milliseconds. Ordinary
#: patterns need far fewer (``^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$`` has 31); Unicode classes such
#: as ``\\pL`` compile to over a thousand.
MAX_PROGRAM_SIZE = 300


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is reported to the flow's author, not to stderr
    options.never_capture = True  # a condition asks "does it match?", never for groups
    return options


_OPTIONS = _options()


class Pattern:
    """A compiled ``regex`` condition: :meth:`search` answers whether a text contains a match.

    Safe to share between threads (RE2 objects are).
    """

    __slots__ = ("_regexp", "source")

    def __init__(self, source: str, regexp: re2._Regexp) -> None:
        self.source = source
        self._regexp = regexp

    def search(self, text: str) -> bool:
        """Whether ``text`` contains a match (any length: callers bound it).

        Raises:
            UnicodeEncodeError: ``text`` holds a lone surrogate (it is not valid Unicode).
        """
        return self._regexp.search(text) is not None

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


def compile_pattern(source: str) -> Pattern:
    """Compile a ``regex`` condition's pattern.

    Raises:
        ValueError: the pattern is not valid RE2 syntax (including backreferences and
            lookaround, which RE2 does not support), is longer than MAX_PATTERN_LENGTH, or
            compiles to more than MAX_PROGRAM_SIZE instructions; the message says which.
    """
    if len(source) > MAX_PATTERN_LENGTH:
        raise ValueError(
            f"regular expression is too long ({len(source)} > {MAX_PATTERN_LENGTH} characters)"
        )
    try:
        regexp = re2.compile(source, _OPTIONS)
    except UnicodeError:
        raise ValueError("regular expression is not valid Unicode text") from None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"invalid regular expression {source!r}: {reason} (patterns use RE2 syntax, which "
            "has no backreferences or lookaround)"
        ) from None
    size = max(regexp.programsize, regexp.reverseprogramsize)
    if size > MAX_PROGRAM_SIZE:
        raise ValueError(
            f"regular expression {source!r} is too complex: it compiles to {size} instructions, "
            f"more than {MAX_PROGRAM_SIZE} (large counted repeats such as [ab]{{300}} and Unicode "
            "classes such as \\pL are expensive); simplify it"
        )
    return Pattern(source, regexp)
