"""The partner check's source: a study counts as shared when its last ``share.publish``
result (in a real SQLite state store) shared a manifest."""

from __future__ import annotations

from typing import Any

from bridge.sharing.published import PublishedStudies
from bridge.sharing.publisher import TASK_KIND
from bridge.state import StateStore


def settle(store: StateStore, key: str, result: dict[str, Any]) -> None:
    store.enqueue_task(TASK_KIND, key)
    [task] = store.claim_tasks(TASK_KIND, limit=1, worker="t", lease_seconds=30)
    assert store.complete_task(task, worker="t", result=result)


async def test_only_a_study_whose_last_publication_shared_it_is_published(
        store: StateStore) -> None:
    published = PublishedStudies(store)
    settle(store, "site-a/1.2.3", {"shared": True, "reason": "policy-all",
                                   "document": "DocumentReference/d1"})
    settle(store, "site-a/1.2.4", {"shared": False, "reason": "excluded-modality:MG"})

    assert await published.current_manifest("site-a", "1.2.3") == "DocumentReference/d1"
    assert await published.current_manifest("site-a", "1.2.4") is None
    assert await published.current_manifest("site-b", "1.2.3") is None  # another archive
    assert await published.current_manifest("site-a", "1.2.5") is None  # never queued

    settle(store, "site-a/1.2.3", {"shared": False, "reason": "study-gone",
                                   "superseded": ["DocumentReference/d1"]})
    assert await published.current_manifest("site-a", "1.2.3") is None
