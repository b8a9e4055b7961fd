"""A failed attempt's outcome follows its error's branch (``bridge.sync.settle``), and the
record and metric name the error that happened (issue 18, "One error tree")."""

from __future__ import annotations

import random

import pytest

from bridge.config import SyncSettings
from bridge.errors import (
    ArchiveUnavailable,
    AuthError,
    BridgeError,
    Conflict,
    DicomDataError,
    FhirBusy,
    PatientNotFound,
    StudyGone,
)
from bridge.metrics import FAILURES
from bridge.state import Status
from bridge.sync.runner import DrainStats
from bridge.sync.settle import AUTH_BACKOFF_ATTEMPTS, Defer, Fail, decide
from tests.unit.sync.fakes import Rig

SYNC = SyncSettings(max_attempts=3, backoff_base=1.0, backoff_max=60.0,
                    patient_retry_interval=600.0)


def _decide(exc: BridgeError, attempts: int) -> Defer | Fail:
    # jitter drawn 1.0: the delay is the top of its range, so the bounds below are exact
    rng = random.Random()
    rng.random = lambda: 1.0  # type: ignore[method-assign]
    return decide(exc, attempts=attempts, sync=SYNC, rng=rng)


async def test_a_study_of_an_archive_no_longer_configured_fails_as_config(rig: Rig) -> None:
    retired, uid = "retired-archive", "1.2.826.0.1.3680043.8.498.1"
    rig.store.mark_many_due(retired, [(uid, None)], reason="manual")
    before = FAILURES.labels(archive=retired, kind="config")._value.get()

    stats = DrainStats()
    assert await rig.runner.run_once(stats) == 1

    assert stats.failed == 1
    view = rig.store.get_study(retired, uid)
    assert view is not None and view.status == Status.FAILED
    [failure] = rig.store.failure_history(uid, archive=retired)
    # not "fhir-rejected": the FHIR server was never asked
    assert failure.permanent and failure.kind == "config"
    assert "no longer configured" in failure.message
    assert FAILURES.labels(archive=retired, kind="config")._value.get() == before + 1


@pytest.mark.parametrize("attempts", [1, SYNC.max_attempts, 50])
def test_a_missing_patient_is_parked_for_the_patient_interval(attempts: int) -> None:
    assert _decide(PatientNotFound("no match"), attempts) == Defer(600.0, parked=True)


@pytest.mark.parametrize("outage", [ArchiveUnavailable("down"), FhirBusy("503")])
def test_an_outage_stays_due_however_often_it_was_tried(outage: BridgeError) -> None:
    for attempts in (1, SYNC.max_attempts, 50):
        outcome = _decide(outage, attempts)
        assert isinstance(outcome, Defer) and not outcome.parked
        assert outcome.delay == min(60.0, 2.0 ** (attempts - 1))


def test_an_outage_honours_retry_after_as_a_floor() -> None:
    assert _decide(FhirBusy("429", retry_after=120.0), 1) == Defer(120.0, parked=False)


def test_refused_credentials_are_parked_with_a_capped_backoff() -> None:
    capped = 2.0 ** (AUTH_BACKOFF_ATTEMPTS - 1)
    assert _decide(AuthError("401"), 1) == Defer(1.0, parked=True)
    assert _decide(AuthError("401"), 50) == Defer(capped, parked=True)


def test_a_retryable_error_counts_its_attempts_then_fails() -> None:
    assert _decide(Conflict("412", retry_after=9.0), 1) == Defer(9.0, parked=False)
    assert _decide(Conflict("412"), SYNC.max_attempts - 1) == Defer(2.0, parked=False)
    assert _decide(Conflict("412"), SYNC.max_attempts) == Fail()


@pytest.mark.parametrize("error", [DicomDataError("no UID"), StudyGone("404")])
def test_a_permanent_error_fails_at_once(error: BridgeError) -> None:
    assert _decide(error, 1) == Fail()
