"""Collects the warnings of one mapping run, deduplicated and in a stable order."""

from __future__ import annotations

from typing import Any

from bridge.mapping.problems import Problem
from bridge.mapping.result import MappingWarning
from bridge.mapping.tags import PATIENT_IDENTIFYING, label

_MAX_VALUE_CHARS = 80


def shorten(value: Any) -> str | None:
    """Render an offending value for a warning: ``repr`` of non-strings and of strings with
    unprintable characters (so the text is always printable and encodable), cut to 80 chars."""
    if value is None:
        return None
    text = value if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


class WarningSink:
    """Accumulates :class:`MappingWarning` for one study.

    The same (tag, value, problem) reported for many instances is kept once, with the
    smallest place it was seen at, and the result is sorted: the warnings never depend on
    the order the archive returned the instances in.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str | None, str], MappingWarning] = {}

    def add(self, tag: str, value: Any, problem: Problem, where: str | None = None) -> None:
        """Record that ``value`` of attribute ``tag`` (8 hex digits) was not used."""
        text = shorten(value)
        key = (tag, text, problem.text)
        known = self._seen.get(key)
        if known is None or (where or "") < (known.where or ""):
            self._seen[key] = MappingWarning(
                tag=label(tag),
                value=text,
                problem=problem.text,
                code=problem.code,
                where=where,
                sensitive=tag in PATIENT_IDENTIFYING,
            )

    def result(self) -> list[MappingWarning]:
        """The warnings sorted by tag, place, problem and value."""
        return sorted(
            self._seen.values(),
            key=lambda w: (w.tag, w.where or "", w.problem, w.value or ""),
        )
