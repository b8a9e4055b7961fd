"""The DIMSE legacy source client against two real legacy implementations (DCMTK dcmqrscp
and Orthanc's DICOM server): C-ECHO, the inventory by date windows with instance counts,
splitting under a result cap, and the typed errors of a source that is down or refuses
our association (issue 15)."""

from __future__ import annotations

from datetime import date

import pytest
from devservers.dcmqrscp import Dcmqrscp

from bridge.errors import AuthError, Outage
from bridge.migration.client import LegacySource
from bridge.migration.errors import LegacyRefused, LegacyUnavailable
from bridge.migration.inventory import walk_inventory
from bridge.sections.migration import LegacySourceSettings
from tests.integration.migration.legacy_servers import ORTHANC_FIND_LIMIT, LoadedLegacy

START, END = date(1990, 1, 1), date(2030, 12, 31)

LEGACIES = ["dcmqrscp_legacy", "orthanc_legacy"]


@pytest.fixture(params=LEGACIES)
def legacy(request: pytest.FixtureRequest) -> LoadedLegacy:
    loaded: LoadedLegacy = request.getfixturevalue(request.param)
    return loaded


def expected(legacy: LoadedLegacy) -> dict[str, int]:
    return {s.truth.study_uid: s.truth.instance_count for s in legacy.studies}


async def test_echo_answers_success(legacy: LoadedLegacy) -> None:
    await LegacySource(legacy.settings).echo()


async def test_inventory_lists_exactly_the_loaded_studies_with_instance_counts(
        legacy: LoadedLegacy) -> None:
    source = LegacySource(legacy.settings.model_copy(update={"max_results": None}))
    found = {s.study_uid: s async for s in walk_inventory(source, start=START, end=END,
                                                         window_days=3650, complete=True)}
    assert {uid: s.instance_count for uid, s in found.items()} == expected(legacy)
    by_uid = {s.truth.study_uid: s.truth for s in legacy.studies}
    for uid, study in found.items():
        truth = by_uid[uid]
        assert (study.patient_id, study.issuer_of_patient_id, study.accession_number) == (
            truth.patient_id, truth.patient_issuer, truth.accession_number)
        assert study.study_date == date.fromisoformat(
            f"{truth.study_date[:4]}-{truth.study_date[4:6]}-{truth.study_date[6:]}")
        assert study.modalities == tuple(sorted(set(truth.modalities)))
        assert study.series_count == truth.series_count


async def test_study_instances_are_the_loaded_sop_instances(legacy: LoadedLegacy) -> None:
    study = legacy.studies[0]
    instances = await LegacySource(legacy.settings).study_instances(study.study_uid)
    loaded = {ds.SOPInstanceUID for ds in study.instances()}
    assert {i.sop_instance_uid for i in instances} == loaded
    assert len(instances) == len(loaded)


async def test_orthanc_result_cap_splits_windows_and_still_finds_all(
        orthanc_legacy: LoadedLegacy) -> None:
    source = LegacySource(orthanc_legacy.settings)
    whole = await source.find_studies(start=START, end=END)
    assert whole.capped and len(whole.studies) == ORTHANC_FIND_LIMIT  # the cap is real
    found = [s.study_uid async for s in walk_inventory(source, start=START, end=END,
                                                      window_days=20000)]
    assert sorted(found) == sorted(expected(orthanc_legacy))


async def test_declared_result_cap_splits_windows_of_a_source_that_does_not_say(
        dcmqrscp_legacy: LoadedLegacy) -> None:
    source = LegacySource(dcmqrscp_legacy.settings.model_copy(update={"max_results": 2}))
    assert (await source.find_studies(start=START, end=END)).capped
    found = [s.study_uid async for s in walk_inventory(source, start=START, end=END,
                                                      window_days=20000)]
    assert sorted(found) == sorted(expected(dcmqrscp_legacy))


async def test_a_source_that_is_down_is_an_outage() -> None:
    server = Dcmqrscp().start()
    try:
        settings = LegacySourceSettings(name="gone", ae_title=server.ae_title,
                                        host=server.host, port=server.port, connect_timeout=5)
        await LegacySource(settings).echo()
    finally:
        server.stop()
    with pytest.raises(LegacyUnavailable, match="did not answer") as caught:
        await LegacySource(settings).find_studies(start=START, end=END)
    assert isinstance(caught.value, Outage)


async def test_an_unknown_called_ae_title_is_refused(legacy: LoadedLegacy) -> None:
    wrong = legacy.settings.model_copy(update={"ae_title": "NOT-THE-PACS"})
    with pytest.raises(LegacyRefused, match="Called AE title not recognised") as caught:
        await LegacySource(wrong).find_studies(start=START, end=END)
    assert isinstance(caught.value, AuthError)


async def test_one_study_is_found_by_uid_and_an_unknown_uid_is_none(
        legacy: LoadedLegacy) -> None:
    source = LegacySource(legacy.settings)
    truth = legacy.studies[-1].truth
    study = await source.find_study(truth.study_uid)
    assert study is not None and study.accession_number == truth.accession_number
    assert await source.find_study("2.25.1") is None


async def test_a_rejection_is_read_however_soon_the_peer_closes(
        dcmqrscp_legacy: LoadedLegacy) -> None:
    """dcmqrscp closes the connection right after its A-ASSOCIATE-RJ; pynetdicom then often
    reports the association aborted (about half the tries).  Every try must still be the
    refusal the source sent, never an outage: a wrong AE title waits for an administrator
    instead of being retried as if the PACS were down."""
    wrong = dcmqrscp_legacy.settings.model_copy(update={"ae_title": "NOT-THE-PACS"})
    for _ in range(30):
        with pytest.raises(LegacyRefused, match="Called AE title not recognised"):
            await LegacySource(wrong).find_studies(start=START, end=END)
