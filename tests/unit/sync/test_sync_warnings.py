"""The runner records the warnings of each study's latest mapping in the state store (and
counts them by code), never patient data: the feedback interface teams need when they change
the mapping (mappings/*.yaml)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from bridge.mapping import EndpointSpec, MappingWarning
from bridge.state import StudyWarning
from bridge.sync.recorded_warnings import MAX_KEPT, to_stored
from tests.unit.sync.fakes import ARCHIVE, FakeArchive, FakeFhir, Rig, studies

BODY_PART = "00180015"
BIRTH_DATE = "00100030"
PROCEDURE_CODES = "00081032"


def _known(fhir: FakeFhir, study: Any) -> None:
    fhir.patients.add(f"{study.truth.patient_system}|{study.truth.patient_id}")


def _set(instances: list[dict[str, Any]], key: str, vr: str, value: str | None) -> None:
    for instance in instances:
        if value is None:
            instance.pop(key, None)
        else:
            instance[key] = {"vr": vr, "Value": [value]}


def _codes(rig: Rig, uid: str) -> dict[str, StudyWarning]:
    return {w.code: StudyWarning(code=w.code, tag=w.tag, message=w.message, where=w.where,
                                 value=w.value)
            for w in rig.store.study_warnings(uid, archive=ARCHIVE)}


def _counted(code: str) -> float:
    value = REGISTRY.get_sample_value("bridge_mapping_warnings_total",
                                      {"archive": ARCHIVE, "code": code})
    return value or 0.0


async def test_a_study_mapped_with_warnings_is_written_and_its_warnings_kept_without_phi(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir
) -> None:
    [s] = studies(1)
    archive.add(s)
    _known(fhir, s)
    instances = archive.instances[s.study_uid]
    _set(instances, BODY_PART, "CS", "ELBOWX")
    _set(instances, BIRTH_DATE, "DA", "19791399")  # a patient's (bad) birth date
    before = _counted("unknown-body-part")
    rig.mark(s.study_uid)

    assert (await rig.runner.drain()).synced == 1
    assert fhir.writes == [s.study_uid]  # a warning never stops the write
    assert all("bodySite" not in series for series in fhir.stored[s.study_uid]["series"])

    kept = _codes(rig, s.study_uid)
    body = kept["unknown-body-part"]
    assert (body.tag, body.value) == ("(0018,0015) BodyPartExamined", "ELBOWX")
    assert body.where and body.where.startswith("series ")
    birth = kept["invalid-date"]
    assert (birth.tag, birth.value) == ("(0010,0030) PatientBirthDate", None)
    assert kept["unknown-coding-scheme"].value == "99HOSPA"  # a term: kept
    stored_text = repr(rig.store.study_warnings(s.study_uid))
    for phi in ("19791399", s.truth.patient_id, *s.truth.patient_name.split("^")):
        assert phi not in stored_text
    assert _counted("unknown-body-part") == before + 1


async def test_warnings_follow_the_latest_mapping_and_are_cleared_when_it_has_none(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir
) -> None:
    [s] = studies(1)
    archive.add(s)
    _known(fhir, s)
    instances = archive.instances[s.study_uid]
    _set(instances, BODY_PART, "CS", "ELBOWX")
    rig.mark(s.study_uid)
    await rig.runner.drain()
    assert "unknown-body-part" in _codes(rig, s.study_uid)

    rig.mark(s.study_uid)  # same data: the write is skipped, the warnings stay
    assert (await rig.runner.drain()).unchanged == 1
    assert "unknown-body-part" in _codes(rig, s.study_uid)

    # the source is fixed: a known body part, no local procedure code, a zone
    _set(instances, BODY_PART, "CS", "ELBOW")
    _set(instances, PROCEDURE_CODES, "SQ", None)
    _set(instances, "00080201", "SH", "+0100")
    endpoint = EndpointSpec(address="http://archive.test/dicom-web")
    assert rig.runner.engine.map_study(instances, endpoint=endpoint).warnings == []
    rig.mark(s.study_uid)
    assert (await rig.runner.drain()).synced == 1
    assert rig.store.study_warnings(s.study_uid) == []
    assert rig.store.warned_study_count() == 0


async def test_a_rejected_study_keeps_its_mapping_warnings_and_an_unmapped_attempt_keeps_them(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir
) -> None:
    [s] = studies(1)
    archive.add(s)
    _known(fhir, s)
    _set(archive.instances[s.study_uid], BODY_PART, "CS", "ELBOWX")
    fhir.reject.add(s.study_uid)
    rig.mark(s.study_uid)
    assert (await rig.runner.drain()).failed == 1
    assert "unknown-body-part" in _codes(rig, s.study_uid)

    archive.down.add(s.study_uid)  # the next attempt never gets to map the study
    rig.mark(s.study_uid)
    assert (await rig.runner.drain()).retried == 1
    assert "unknown-body-part" in _codes(rig, s.study_uid)


def _warning(code: str, value: str | None, tag: str = "(0018,0015) BodyPartExamined",
             where: str | None = "series 1.2.3") -> MappingWarning:
    return MappingWarning(tag=tag, value=value, problem=f"problem of {code}", code=code,
                          where=where)


def test_only_vocabulary_terms_are_kept_and_redacted_duplicates_become_one() -> None:
    kept = to_stored([
        _warning("unknown-body-part", "ELBOWX"),
        _warning("unknown-body-part", "Smith, John (1979)"),  # not shaped like a term
        _warning("invalid-date", "20241399", tag="(0008,0020) StudyDate"),
        _warning("invalid-date", "20241398", tag="(0008,0020) StudyDate"),  # same, redacted
    ])
    assert [(w.code, w.value) for w in kept] == [
        ("unknown-body-part", "ELBOWX"), ("unknown-body-part", None), ("invalid-date", None)]


def test_at_most_max_kept_warnings_are_kept_per_study() -> None:
    many = [_warning("invalid-date", None, where=f"series 1.2.{n}") for n in range(MAX_KEPT + 50)]
    assert len(to_stored(many)) == MAX_KEPT
