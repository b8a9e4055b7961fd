"""Which studies this site has shared: the check a partner's retrieve needs (issue 14,
"every retrieval limited to studies site A published"; XDS-I.b RAD-69/RAD-107 serve what a
manifest references).

The publications are the state store's ``share.publish`` tasks (key ``<archive>/<study
uid>``), each keeping its last :class:`~bridge.sharing.publisher.Publication` as its
result: a study is shared when that result says ``shared`` and names the current
DocumentReference.  No registry query per request: the result is what this site
registered (a manifest someone else deprecated in the registry still counts until the
study's next publication).  A study being re-published keeps its last result until the
new one is recorded (an exclusion takes effect when its publication is done).

Not wired yet: the gateway's partner tokens (docs/sharing.md, "What remains").
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from bridge.sharing.publisher import TASK_KIND


class _Task(Protocol):
    @property
    def result(self) -> Mapping[str, Any] | None: ...


class TaskLookup(Protocol):
    """The state store's task look-up (bridge.state.store.StateStore.task)."""

    def task(self, kind: str, key: str) -> _Task | None: ...


class PublishedStudies:
    """Reads the last publication of a study from the state store."""

    def __init__(self, store: TaskLookup) -> None:
        self._store = store

    async def current_manifest(self, archive: str, study_uid: str) -> str | None:
        """``DocumentReference/<id>`` of the study's current manifest as this site last
        registered it; None when the study was never shared, or is no longer."""
        task = await asyncio.to_thread(self._store.task, TASK_KIND, f"{archive}/{study_uid}")
        result = task.result if task is not None else None
        if not result or result.get("shared") is not True:
            return None
        document = result.get("document")
        return document if isinstance(document, str) else None
