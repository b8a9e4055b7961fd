"""The task queue's rules (``bridge/state/tasks.py``) as scenarios over any store, run on
SQLite (``test_state_tasks.py``) and PostgreSQL (``tests/integration/test_state_tasks_pg.py``)."""

from __future__ import annotations

from datetime import timedelta

from bridge.state import StateStore
from bridge.state.tasks import TaskStatus
from tests.unit.state.state_helpers import FakeClock

KIND = "share.publish"


def one_row_per_key_and_claim_in_due_order(store: StateStore, clock: FakeClock) -> None:
    store.enqueue_task(KIND, "a/1", payload={"n": 1})
    clock.advance(1)
    store.enqueue_task(KIND, "a/2")
    store.enqueue_task(KIND, "a/1")  # again: one row, payload kept, still first
    store.enqueue_task("record.map", "a/1")  # another kind: its own row
    assert store.task_counts(KIND) == {"due": 2, "leased": 0, "done": 0, "failed": 0}
    first = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=60)
    assert [(t.key, t.status, t.attempts, dict(t.payload or {})) for t in first] == [
        ("a/1", TaskStatus.LEASED, 1, {"n": 1})]
    assert [t.key for t in store.claim_tasks(KIND, limit=5, worker="w2",
                                             lease_seconds=60)] == ["a/2"]
    assert store.claim_tasks(KIND, limit=5, worker="w3", lease_seconds=60) == []
    assert store.complete_task(first[0], worker="w1", result={"document": "DocumentReference/9"})
    done = store.task(KIND, "a/1")
    assert done is not None and done.status == TaskStatus.DONE
    assert dict(done.result or {}) == {"document": "DocumentReference/9"}
    assert [t.key for t in store.claim_tasks("record.map", limit=5, worker="w1",
                                             lease_seconds=60)] == ["a/1"]


def an_enqueue_during_the_lease_runs_the_task_again(store: StateStore, clock: FakeClock
                                                    ) -> None:
    store.enqueue_task(KIND, "a/1")
    (task,) = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=60)
    store.enqueue_task(KIND, "a/1")  # the study changed while it was being published
    assert store.claim_tasks(KIND, limit=1, worker="w2", lease_seconds=60) == []
    assert store.complete_task(task, worker="w1")
    again = store.task(KIND, "a/1")
    assert again is not None and again.status == TaskStatus.DUE
    (rerun,) = store.claim_tasks(KIND, limit=1, worker="w2", lease_seconds=60)
    assert rerun.attempts == 2
    assert store.complete_task(rerun, worker="w2")
    final = store.task(KIND, "a/1")
    assert final is not None and final.status == TaskStatus.DONE


def only_the_lease_holder_records_and_an_expired_lease_is_claimed_again(
        store: StateStore, clock: FakeClock) -> None:
    store.enqueue_task(KIND, "a/1")
    (task,) = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30)
    assert not store.complete_task(task, worker="intruder")
    clock.advance(31)  # w1 crashed
    (taken,) = store.claim_tasks(KIND, limit=1, worker="w2", lease_seconds=30)
    assert taken.attempts == 2
    assert not store.complete_task(task, worker="w1")  # too late: w2 owns it now
    assert store.complete_task(taken, worker="w2")


def retries_wait_their_time_waiting_gives_the_attempt_back_and_failures_stay(
        store: StateStore, clock: FakeClock) -> None:
    store.enqueue_task(KIND, "a/1")
    (task,) = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30)
    assert store.retry_task(task, worker="w1", error="outage: registry down",
                            at=clock() + timedelta(seconds=10), counted=False)
    assert store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30) == []
    clock.advance(10)
    (task,) = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30)
    assert task.attempts == 1 and task.last_error == "outage: registry down"
    assert store.retry_task(task, worker="w1", error="retryable: aborted",
                            at=clock())
    (task,) = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30)
    assert task.attempts == 2
    assert store.fail_task(task, worker="w1", error="fhir-rejected: content[0].format")
    failed = store.task(KIND, "a/1")
    assert failed is not None and failed.status == TaskStatus.FAILED
    assert store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30) == []
    assert [t.key for t in store.tasks(KIND, status=TaskStatus.FAILED)] == ["a/1"]
    assert store.retry_failed_tasks(KIND) == 1
    (task,) = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30)
    assert task.attempts == 1


def a_failed_or_done_task_enqueued_again_starts_afresh(store: StateStore, clock: FakeClock
                                                       ) -> None:
    store.enqueue_task(KIND, "a/1")
    (task,) = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30)
    assert store.fail_task(task, worker="w1", error="permanent")
    clock.advance(1)
    store.enqueue_task(KIND, "a/1")
    (task,) = store.claim_tasks(KIND, limit=1, worker="w1", lease_seconds=30)
    assert task.attempts == 1


def a_claim_reads_one_kind_by_index_behind_many_rows(store: StateStore, clock: FakeClock
                                                     ) -> None:
    store.enqueue_tasks("migrate.legacy", [f"1.2.{i}" for i in range(3000)])
    store.enqueue_task(KIND, "a/late")
    assert [t.key for t in store.claim_tasks(KIND, limit=10, worker="w",
                                             lease_seconds=30)] == ["a/late"]
    assert store.task_counts("migrate.legacy")["due"] == 3000
