"""Where the SCP reads its items from.  Today an in-memory list; the state-store worklist
table (issue 17, docs/worklist.md) will be a second implementation of :class:`ItemSource`."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Protocol

from pydicom.dataset import Dataset

from bridge.worklist.index import WorklistIndex


class ItemSource(Protocol):
    """The scheduled worklist items, read once per C-FIND."""

    def items(self) -> Sequence[Dataset]: ...

    def candidates(self, query: Dataset) -> Sequence[Dataset]:
        """The items that may match ``query``: every match, in order (a superset is
        fine, the SCP matches each one)."""
        ...


class InMemoryWorklist:
    """A list of items replaced as a whole (each C-FIND sees one consistent list), indexed
    when replaced (:class:`WorklistIndex`) so a query naming an accession, a station, a
    modality or a date reads only the items that can match."""

    def __init__(self, items: Iterable[Dataset] = ()) -> None:
        self._lock = threading.Lock()
        self._index = WorklistIndex(items)

    def items(self) -> Sequence[Dataset]:
        with self._lock:
            return self._index.items

    def candidates(self, query: Dataset) -> Sequence[Dataset]:
        with self._lock:
            index = self._index
        return index.candidates(query)

    def replace(self, items: Iterable[Dataset]) -> None:
        new = WorklistIndex(items)
        with self._lock:
            self._index = new
