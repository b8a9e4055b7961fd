""""Gone" is a claim checked before any delete policy runs, and a UID never becomes a path
(issue 12, items 1 and 2), against in-process fakes; the same against real Orthanc and HAPI
is in tests/integration/realtime/test_gone_means_gone.py."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from bridge.config import DeletePolicy
from bridge.dicom_uid import is_valid_uid, require_uid, uid_segment
from bridge.errors import DicomDataError
from bridge.state import Status
from bridge.sync.deletes import GoneHandler
from tests.unit.sync.fakes import ARCHIVE, FakeArchive, FakeFhir, Rig, studies


class _Recorder:
    """Stands in for the delete policy and records whether it was ever asked to run."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, claim: object, *, worker: str) -> str | None:
        self.calls.append(claim.study_uid)  # type: ignore[attr-defined]
        return None


@pytest.fixture
def recorder() -> _Recorder:
    return _Recorder()


@pytest.fixture
def gone_rig(rig_factory: Callable[..., Rig], recorder: _Recorder) -> Rig:
    return rig_factory(runner_options={"on_gone": recorder})


async def test_a_study_listed_under_two_patients_is_a_data_error_not_gone(
    gone_rig: Rig, archive: FakeArchive, recorder: _Recorder
) -> None:
    [s] = studies(1)
    archive.gone.add(s.study_uid)  # WADO-RS metadata 404, as Orthanc answers
    archive.patients_of[s.study_uid] = ["PAT-A", "PAT-B"]
    gone_rig.mark(s.study_uid)

    stats = await gone_rig.runner.drain()

    assert recorder.calls == []  # no delete policy ran
    assert stats.failed == 1
    failure = gone_rig.store.failure_history(s.study_uid)[-1]
    assert failure.kind == "dicom-data"
    assert "2 patients" in failure.message and "StudyInstanceUID" in failure.message


async def test_a_study_listed_but_unreadable_is_not_gone(
    gone_rig: Rig, archive: FakeArchive, recorder: _Recorder
) -> None:
    [s] = studies(1)
    archive.gone.add(s.study_uid)
    archive.patients_of[s.study_uid] = ["PAT-A"]
    gone_rig.mark(s.study_uid)

    await gone_rig.runner.drain()

    assert recorder.calls == []
    failure = gone_rig.store.failure_history(s.study_uid)[-1]
    assert failure.kind == "archive-rejected" and "not treated as gone" in failure.message


async def test_a_study_no_qido_row_lists_is_gone_and_the_policy_runs(
    gone_rig: Rig, archive: FakeArchive, recorder: _Recorder
) -> None:
    [s] = studies(1)
    archive.gone.add(s.study_uid)
    gone_rig.mark(s.study_uid)

    await gone_rig.runner.drain()

    assert recorder.calls == [s.study_uid]
    assert any(p.split("?")[0].endswith("/studies") for p in archive.paths)  # QIDO asked


@pytest.mark.parametrize("bad", ["1.2.3/../1.2.4", "..", "%2e%2e", "1.2.03", "1.2.3\n",
                                 "1.2." + "4" * 70, "abc", "", "1"])
async def test_an_invalid_uid_in_the_queue_is_a_data_error_and_never_a_request(
    bad: str, gone_rig: Rig, archive: FakeArchive, recorder: _Recorder
) -> None:
    gone_rig.store.mark_many_due(ARCHIVE, [(bad, None)], reason="manual")

    await gone_rig.runner.drain()

    assert archive.paths == []  # nothing was fetched with it
    assert recorder.calls == []
    view = gone_rig.store.get_study(ARCHIVE, bad)
    assert view is not None and view.status == Status.FAILED
    failure = gone_rig.store.failure_history(bad)[-1]
    assert failure.kind == "dicom-data" and "(0020,000D) StudyInstanceUID" in failure.message


async def test_delete_policy_is_not_applied_to_a_study_under_two_patients(
    rig_factory: Callable[..., Rig], archive: FakeArchive, fhir: FakeFhir
) -> None:
    """With the real GoneHandler and policy delete: no DELETE reaches the FHIR server."""
    rig = rig_factory()
    handler = GoneHandler(fhir=rig.runner.fhir, store=rig.store, policy=DeletePolicy.DELETE)
    rig.runner._on_gone = handler  # the hook the runner is built with
    [s] = studies(1)
    archive.gone.add(s.study_uid)
    archive.patients_of[s.study_uid] = ["PAT-A", "PAT-B"]
    rig.mark(s.study_uid)

    await rig.runner.drain()

    assert fhir.writes == []
    view = rig.store.get_study(ARCHIVE, s.study_uid)
    assert view is not None and view.status == Status.FAILED


def test_uid_rules_of_ps3_5_9_1() -> None:
    assert is_valid_uid("1.2.840.10008.1.2.1")
    assert is_valid_uid("2.25.0")
    assert is_valid_uid("1." + "2" * 62)  # 64 characters
    for bad in ("1." + "2" * 63, "1.02", "1..2", ".1.2", "1.2.", "1", "1.2a", "1.2\n",
                "１.２", None, 12):
        assert not is_valid_uid(bad), bad
    with pytest.raises(DicomDataError) as err:
        require_uid("1.2/../3", tag="(0020,000E) SeriesInstanceUID")
    assert err.value.tag == "(0020,000E) SeriesInstanceUID"
    assert "'1.2/../3'" in err.value.message
    assert uid_segment("1.2.3") == "1.2.3"


@pytest.mark.parametrize("policy", list(DeletePolicy))
async def test_a_study_verified_gone_queues_its_gone_follow_ups_under_every_policy(
    rig_factory: Callable[..., Rig], archive: FakeArchive, fhir: FakeFhir,
    policy: DeletePolicy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sharing publisher must hear of a study that left the archive (it deprecates the
    manifest), whatever the EHR's delete policy; a study that is not gone queues nothing."""
    searched = fhir.sync_handler

    def none_of_ours(request: httpx.Request) -> httpx.Response:  # the policy's search
        if request.method == "GET" and request.url.path.endswith("/ImagingStudy"):
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})
        return searched(request)

    monkeypatch.setattr(fhir, "sync_handler", none_of_ours)
    rig = rig_factory()
    rig.runner._on_gone = GoneHandler(fhir=rig.runner.fhir, store=rig.store, policy=policy,
                                      follow_ups=("share.publish",))
    gone, listed = studies(2)
    archive.gone.update({gone.study_uid, listed.study_uid})
    archive.patients_of[listed.study_uid] = ["PAT-A"]  # 404 but still listed: not gone
    rig.mark(gone.study_uid, listed.study_uid)

    await rig.runner.drain()

    assert [t.key for t in rig.store.tasks("share.publish")] == [
        f"{ARCHIVE}/{gone.study_uid}"]
