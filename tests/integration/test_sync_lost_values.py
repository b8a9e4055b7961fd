"""Values lost on the way through the real Orthanc, against the real HAPI FHIR (issue 12
item 4): a multi-valued PatientID is never linked to the Patient its first value names, and
values Orthanc cannot convert are warned about rather than dropped silently."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import devstack
import httpx
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from samples.generator import GeneratedStudy, generate_studies, write_part10
from samples.seed_ehr import seed_ehr
from tests.integration.sync_helpers import bridge_settings, fhir_search, study_by_uid
from tests.support.wiring import sync_context

ARCHIVE = "orthanc"  # the name bridge_settings gives the archive


@pytest.fixture(scope="module")
def orthanc(own_orthanc: devstack.Orthanc) -> devstack.Orthanc:
    """This module's own Orthanc, in place of the shared one: the studies stored here are
    broken on purpose, and other tests backfill the shared archive expecting no failure."""
    return own_orthanc


Patches = dict[bytes, bytes]


def _raw(ds: Dataset, keyword: str, vr: str, data: bytes, patches: Patches) -> None:
    """Have ``data`` written into ``ds`` as it is.  pydicom re-encodes text with the data
    set's character set when writing (invalid UTF-8 would reach Orthanc as valid U+FFFD),
    so a placeholder of the same length is written and replaced in the file's bytes."""
    padded = data + b" " if len(data) % 2 else data
    placeholder = {"PN": "Q", "LO": "Z"}[vr] * len(padded)
    setattr(ds, keyword, placeholder)
    patches[placeholder.encode("ascii")] = padded


def _store_altered(orthanc: Any, hapi: Any, ns: Any, offset: int,
                   alter: Callable[[Dataset, GeneratedStudy, Patches], None], *,
                   patients: float = 1.0) -> GeneratedStudy:
    """Store one generated study with every instance changed by ``alter``, and seed its
    Patient (identified by the study's true PatientID; ``patients=0`` seeds none) and
    orders in the EHR."""
    study = next(iter(generate_studies(1, seed=int(ns.token, 16) % 2**31 + offset,
                                       profile="small", id_prefix=ns.token[:6].upper())))
    with httpx.Client(auth=orthanc.auth, timeout=60) as client:
        for ds in study.instances():
            ds = copy.deepcopy(ds)
            patches: Patches = {}
            alter(ds, study, patches)
            blob = write_part10(ds)
            for placeholder, data in patches.items():
                assert blob.count(placeholder) == 1
                blob = blob.replace(placeholder, data)
            resp = client.post(f"{orthanc.base_url}/instances", content=blob)
            assert resp.status_code == 200, resp.text
    seed_ehr([study.truth], fhir_url=hapi.fhir_url, patients_fraction=patients)
    return study


async def _sync_one(settings: Any, uid: str) -> tuple[Any, list[Any], list[Any]]:
    async with sync_context(settings) as ctx:
        ctx.store.mark_due(ARCHIVE, uid, reason="manual")
        stats = await ctx.runner.drain()
        return stats, ctx.store.failure_history(uid), ctx.store.study_warnings(uid)


def _patient(hapi: Any, study: GeneratedStudy) -> dict[str, Any]:
    truth = study.truth
    [patient] = fhir_search(hapi, "Patient",
                            {"identifier": f"{truth.patient_system}|{truth.patient_id}"})
    return patient


async def test_multi_valued_patient_id_is_a_data_error_never_a_link_to_the_first_value(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    def two_ids(ds: Dataset, study: GeneratedStudy, _patches: Patches) -> None:
        # "P1\OTHER": Orthanc's WADO-RS metadata gives {"Value": ["P1", "OTHER"]}
        ds.PatientID = [study.truth.patient_id, f"{study.truth.patient_id}X"]

    study = _store_altered(orthanc, hapi, ns, 11, two_ids)
    uid = study.study_uid
    existing = _patient(hapi, study)  # the Patient the first value names is in the EHR

    stats, failures, _ = await _sync_one(bridge_settings(orthanc, hapi, tmp_path), uid)

    assert (stats.synced, stats.failed) == (0, 1)
    failure = failures[-1]
    assert failure.permanent and failure.kind == "dicom-data"
    assert "(0010,0020) PatientID" in failure.message and "2 values" in failure.message
    assert study.truth.patient_id not in failure.message  # never the identifier
    assert study_by_uid(hapi, uid) == []
    assert fhir_search(hapi, "ImagingStudy", {"subject": f"Patient/{existing['id']}"}) == []


async def test_unknown_character_set_patient_id_is_a_data_error(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    def unknown_charset(ds: Dataset, study: GeneratedStudy, patches: Patches) -> None:
        # Orthanc drops the bytes it cannot decode: "<id>\xc4" reaches the bridge as "<id>",
        # the true PatientID of a Patient seeded in the EHR
        ds.SpecificCharacterSet = "ISO_IR 999"
        _raw(ds, "PatientID", "LO", study.truth.patient_id.encode("ascii") + b"\xc4", patches)
        _raw(ds, "PatientName", "PN", b"M\xfcller^J\xf6rg", patches)

    study = _store_altered(orthanc, hapi, ns, 12, unknown_charset)
    uid = study.study_uid
    existing = _patient(hapi, study)

    stats, failures, _ = await _sync_one(bridge_settings(orthanc, hapi, tmp_path), uid)

    assert (stats.synced, stats.failed) == (0, 1)
    failure = failures[-1]
    assert failure.kind == "dicom-data"
    assert "(0010,0020) PatientID" in failure.message and "(0008,0005)" in failure.message
    assert study_by_uid(hapi, uid) == []
    assert fhir_search(hapi, "ImagingStudy", {"subject": f"Patient/{existing['id']}"}) == []


async def test_non_numeric_is_values_orthanc_drops_are_synced_with_warnings(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    def bad_numbers(ds: Dataset, study: GeneratedStudy, _patches: Patches) -> None:
        # Orthanc sends an IS it cannot parse as {"vr": "IS", "Value": []}; ASCII text is
        # written as it is, so no placeholder is needed
        for keyword, text in (("SeriesNumber", b"abc "), ("InstanceNumber", b"1x")):
            tag = Tag(keyword)
            ds[tag] = RawDataElement(tag, "IS", len(text), text, 0, False, True)

    study = _store_altered(orthanc, hapi, ns, 13, bad_numbers)
    uid = study.study_uid

    stats, _, warnings = await _sync_one(bridge_settings(orthanc, hapi, tmp_path), uid)

    assert (stats.synced, stats.failed) == (1, 0)
    [written] = study_by_uid(hapi, uid)
    assert all("number" not in series for series in written["series"])
    assert {(w.tag, w.code) for w in warnings} >= {
        ("(0020,0011) SeriesNumber", "invalid-integer"),
        ("(0020,0013) InstanceNumber", "invalid-integer"),
    }


async def test_studies_with_unusable_or_odd_study_dates_are_synced_with_warnings(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    """Issue 12 item 3, the mapping half: whatever source finds them, studies dated empty,
    invalid, 1975 or 2099 all reach the EHR; an unusable date leaves `started` out."""
    def dated(value: str) -> Callable[[Dataset, GeneratedStudy, Patches], None]:
        def alter(ds: Dataset, _study: GeneratedStudy, _patches: Patches) -> None:
            tag = Tag("StudyDate")
            text = value.encode("ascii")
            # raw: pydicom would refuse "abcdefgh" as a DA value on write
            ds[tag] = RawDataElement(tag, "DA", len(text), text, 0, False, True)
        return alter

    cases = {"": None, "abcdefgh": None, "19750101": "1975-01-01", "20990101": "2099-01-01"}
    studies = {value: _store_altered(orthanc, hapi, ns, 20 + n, dated(value))
               for n, value in enumerate(cases)}
    settings = bridge_settings(orthanc, hapi, tmp_path)
    async with sync_context(settings) as ctx:
        for study in studies.values():
            ctx.store.mark_due(ARCHIVE, study.study_uid, reason="manual")
        stats = await ctx.runner.drain()
        codes = {value: {w.code for w in ctx.store.study_warnings(study.study_uid)
                         if w.tag == "(0008,0020) StudyDate"}
                 for value, study in studies.items()}

    assert (stats.synced, stats.failed) == (4, 0)
    for value, study in studies.items():
        [written] = study_by_uid(hapi, study.study_uid)
        expected = cases[value]
        assert written.get("started", "")[:10] == (expected or ""), value
    assert codes == {"": {"missing-study-date"}, "abcdefgh": {"invalid-date"},
                     "19750101": set(), "20990101": {"future-date"}}
