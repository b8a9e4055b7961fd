"""One log line per synced study, with its UID, outcome and duration and nothing of the
patient (issue 20 item 10)."""

from __future__ import annotations

import logging

import pytest

from tests.unit.sync.fakes import FakeArchive, FakeFhir, Rig, studies


async def test_each_synced_study_logs_one_line_with_uid_outcome_and_duration(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir, caplog: pytest.LogCaptureFixture
) -> None:
    batch = studies(3)
    for s in batch:
        archive.add(s)
        fhir.patients.add(f"{s.truth.patient_system}|{s.truth.patient_id}")
    rig.mark(*(s.study_uid for s in batch))

    with caplog.at_level(logging.INFO, logger="bridge.sync.runner"):
        await rig.runner.drain()

    lines = [r for r in caplog.records if r.getMessage() == "study synced"]
    assert sorted(r.study_uid for r in lines) == sorted(s.study_uid for s in batch)  # type: ignore[attr-defined]
    for record in lines:
        assert record.outcome == "create"  # type: ignore[attr-defined]
        assert 0 <= record.seconds < 60  # type: ignore[attr-defined]
        text = repr(record.__dict__)
        for s in batch:
            assert s.truth.patient_id not in text
