"""Where the SCP reads its items from.  Today an in-memory list; the state-store worklist
table (issue 17, docs/worklist.md) will be a second implementation of :class:`ItemSource`."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Protocol

from pydicom.dataset import Dataset


class ItemSource(Protocol):
    """The scheduled worklist items, read once per C-FIND."""

    def items(self) -> Sequence[Dataset]: ...


class InMemoryWorklist:
    """A list of items replaced as a whole (each C-FIND sees one consistent list)."""

    def __init__(self, items: Iterable[Dataset] = ()) -> None:
        self._lock = threading.Lock()
        self._items: tuple[Dataset, ...] = tuple(items)

    def items(self) -> Sequence[Dataset]:
        with self._lock:
            return self._items

    def replace(self, items: Iterable[Dataset]) -> None:
        new = tuple(items)
        with self._lock:
            self._items = new
