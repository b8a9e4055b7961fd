"""The generic task worker settles each task by the error tree (``bridge.errors``): done
with its result, waiting given back, retryable counted then dead, permanent dead at once,
a handler bug dead for that task only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import FhirBusy, FhirRejected, Retryable
from bridge.state import StateStore, open_store
from bridge.state.tasks import Task, TaskStatus
from bridge.sync.signal import WorkSignal
from bridge.sync.tasks_worker import TaskWorker
from tests.unit.state.state_helpers import FakeClock

KIND = "share.publish"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    st = open_store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    try:
        yield st
    finally:
        st.close()


class Script:
    """A handler whose answer per key is scripted: a result, or an exception to raise."""

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, task: Task) -> Mapping[str, Any] | None:
        self.calls.append(task.key)
        answer = self.answers[task.key].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]


def _status(store: StateStore, key: str) -> Task:
    task = store.task(KIND, key)
    assert task is not None
    return task


async def test_results_waiting_retryable_permanent_and_bugs_are_settled_apart(
        store: StateStore, clock: FakeClock) -> None:
    script = Script({
        "ok": [{"document": "DocumentReference/1"}],
        "outage": [FhirBusy("registry down", retry_after=30), {"document": "D/2"}],
        "flaky": [Retryable("aborted"), Retryable("aborted")],
        "rejected": [FhirRejected("content[0].format.code: unknown code", status_code=422)],
        "bug": [KeyError("oops")],
    })
    for key in script.answers:
        store.enqueue_task(KIND, key)
    worker = TaskWorker(store, KIND, script, worker_id="w", batch=10, concurrency=2,
                        max_attempts=2, backoff_base=1.0, backoff_max=10.0)
    assert await worker.run_once() == 5
    assert _status(store, "ok").status == TaskStatus.DONE
    assert dict(_status(store, "ok").result or {}) == {"document": "DocumentReference/1"}
    rejected = _status(store, "rejected")
    assert rejected.status == TaskStatus.FAILED
    assert rejected.last_error == "fhir-rejected: content[0].format.code: unknown code"
    assert _status(store, "bug").status == TaskStatus.FAILED
    assert "KeyError" in (_status(store, "bug").last_error or "")
    outage = _status(store, "outage")
    # waiting: due again no sooner than the server asked, the attempt given back
    assert outage.status == TaskStatus.DUE and outage.attempts == 0
    assert outage.due_at is not None and outage.due_at >= clock() + timedelta(seconds=30)
    assert _status(store, "flaky").status == TaskStatus.DUE
    assert await worker.run_once() == 0  # nothing is due yet: the clock has not moved
    clock.advance(60)
    assert await worker.run_once() == 2
    assert _status(store, "outage").status == TaskStatus.DONE
    flaky = _status(store, "flaky")
    assert flaky.status == TaskStatus.FAILED and flaky.attempts == 2  # max_attempts reached


async def test_run_wakes_on_the_signal_and_stops_on_stop(store: StateStore) -> None:
    done = asyncio.Event()

    async def handler(task: Task) -> None:
        done.set()

    signal = WorkSignal()
    worker = TaskWorker(store, KIND, handler, worker_id="w", idle=3600, signal=signal)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0)  # the loop finds nothing and sleeps on the signal (idle: 1 h)
    store.enqueue_task(KIND, "a/1")
    signal.set()
    await asyncio.wait_for(done.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(running, timeout=10)
    assert running.done() and running.exception() is None
