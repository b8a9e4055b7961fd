"""Waiting for a condition with a deadline, in place of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], *, timeout: float = 30.0, every: float = 0.1,
               what: str = "condition") -> T:
    """Call ``condition`` every ``every`` seconds until it returns a true value, and return
    that value; raise :class:`AssertionError` naming ``what`` once ``timeout`` seconds have
    passed (an exception from ``condition`` itself goes through at once)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
