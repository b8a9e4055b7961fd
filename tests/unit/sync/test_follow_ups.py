"""A study the sync writes queues the enabled rooms' follow-up tasks in the transaction that
records it synced; an unchanged or failed one queues none (issues 14, 16)."""

from __future__ import annotations

from pathlib import Path

from bridge.state.tasks import RECORD_MAP, SHARE_PUBLISH, task_key
from bridge.sync.runner import DrainStats
from bridge.sync.signal import FollowUpSignals
from tests.unit.sync.fakes import ARCHIVE, FakeArchive, FakeFhir, make_rig, studies


async def test_written_studies_queue_each_follow_up_once_and_wake_the_workers(
        tmp_path: Path) -> None:
    archive, fhir = FakeArchive(), FakeFhir()
    ok, rejected = studies(2)
    for s in (ok, rejected):
        archive.add(s)
        fhir.patients.add(f"{s.truth.patient_system}|{s.truth.patient_id}")
    fhir.reject.add(rejected.study_uid)
    signals = FollowUpSignals()
    sharing, record = signals.of(SHARE_PUBLISH), signals.of(RECORD_MAP)
    rig = make_rig(tmp_path / "state.db", archive=archive, fhir=fhir, runner_options={
        "follow_ups": (SHARE_PUBLISH, RECORD_MAP), "follow_up_signal": signals})
    try:
        rig.mark(ok.study_uid, rejected.study_uid)
        stats = DrainStats()
        await rig.runner.run_once(stats)
        assert (stats.synced, stats.failed) == (1, 1)
        # each room's worker has its own signal: one clearing it leaves the other's set
        assert sharing.is_set() and record.is_set()
        sharing.clear()
        assert record.is_set()
        for kind in (SHARE_PUBLISH, RECORD_MAP):
            assert [t.key for t in rig.store.tasks(kind)] == [task_key(ARCHIVE, ok.study_uid)]
        # the same content again: unchanged, nothing new to follow up
        for kind in (SHARE_PUBLISH, RECORD_MAP):
            (task,) = rig.store.claim_tasks(kind, limit=5, worker="w", lease_seconds=60)
            assert rig.store.complete_task(task, worker="w")
        record.clear()
        rig.mark(ok.study_uid)
        stats = DrainStats()
        await rig.runner.run_once(stats)
        assert stats.unchanged == 1
        assert not (sharing.is_set() or record.is_set())
        assert rig.store.task_counts(SHARE_PUBLISH)["due"] == 0
    finally:
        await rig.aclose()


async def test_without_follow_ups_nothing_is_queued(tmp_path: Path) -> None:
    archive, fhir = FakeArchive(), FakeFhir()
    (s,) = studies(1)
    archive.add(s)
    fhir.patients.add(f"{s.truth.patient_system}|{s.truth.patient_id}")
    rig = make_rig(tmp_path / "state.db", archive=archive, fhir=fhir)
    try:
        rig.mark(s.study_uid)
        await rig.runner.run_once(DrainStats())
        assert rig.store.task_counts(SHARE_PUBLISH) == {"due": 0, "leased": 0, "done": 0,
                                                        "failed": 0}
    finally:
        await rig.aclose()
