"""Unit tests for the synthetic sample generator (samples.generator) and the EHR seeder's
resource building / batching (samples.seed_ehr, against an in-memory fake FHIR server)."""

from __future__ import annotations

import io
import itertools
import json
import re
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset

from samples.generator import (
    ACCESSION_SYSTEMS,
    PATIENT_ID_SYSTEMS,
    SOP_CLASS_BY_MODALITY,
    GeneratedStudy,
    StudyTruth,
    generate_studies,
    instances_json,
    manifest_dict,
    read_manifest,
    write_manifest,
    write_part10,
)
from samples.load import _count_response
from samples.seed_ehr import (
    EN_REPRESENTATION,
    V2_0203,
    human_names,
    patient_resource,
    seed_ehr,
    select_patients,
    service_request_resource,
)
from tests.support.fake_fhir import FakeFhir

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
VALID_BODY_PARTS = {
    "CHEST", "ABDOMEN", "HEAD", "BRAIN", "KNEE", "BREAST", "PELVIS", "SPINE", "LSPINE",
    "CSPINE", "HAND", "SHOULDER", "NECK",
}


@pytest.fixture(scope="module")
def mixed200() -> list[GeneratedStudy]:
    return list(generate_studies(200, seed=11))


def _datasets(study: GeneratedStudy) -> list[Dataset]:
    return list(study.instances())


def _study_with(studies: list[GeneratedStudy], charset: str | None) -> GeneratedStudy:
    return next(s for s in studies if s.truth.charset == charset)


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_uids_and_bytes() -> None:
    first = list(generate_studies(25, seed=5))
    second = list(generate_studies(25, seed=5))
    assert [s.truth for s in first] == [s.truth for s in second]
    for a, b in zip(first, second, strict=True):
        assert list(a.part10()) == list(b.part10())


def test_repeated_iteration_is_identical() -> None:
    study = next(s for s in generate_studies(10, seed=2) if s.truth.instance_count > 3)
    assert list(study.part10()) == list(study.part10())
    uids = [ds.SOPInstanceUID for ds in study.instances()]
    assert uids == [ds.SOPInstanceUID for ds in study.instances()]


def test_different_seed_or_prefix_gives_different_ids() -> None:
    base = [s.truth for s in generate_studies(10, seed=1)]
    other_seed = [s.truth for s in generate_studies(10, seed=2)]
    other_prefix = [s.truth for s in generate_studies(10, seed=1, id_prefix="T1")]
    for other in (other_seed, other_prefix):
        assert not {t.study_uid for t in base} & {t.study_uid for t in other}
    assert all(t.patient_id.startswith("T1") for t in other_prefix)
    assert all(t.accession_number.startswith("T1") for t in other_prefix)


def test_fast_encoder_matches_pydicom_writer(mixed200: list[GeneratedStudy]) -> None:
    """The splicing encoder and pydicom's own writer produce the same Part 10 bytes."""
    features: list[Callable[[StudyTruth], bool]] = [
        lambda t: not t.body_parts,
        lambda t: bool(set(t.body_parts) - VALID_BODY_PARTS),
        lambda t: t.charset == "ISO_IR 100",
        lambda t: t.charset == "ISO_IR 192",
        *(lambda t, m=m: m in t.modalities for m in SOP_CLASS_BY_MODALITY),
    ]
    studies = list(mixed200[:30])
    for feature in features:
        studies.append(next(s for s in mixed200 if feature(s.truth)))
    studies.append(next(generate_studies(1, seed=4, profile="typical")))
    covered: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no pydicom validation warnings either
        for study in studies:
            pairs = zip(study.part10(), study.instances(reference=True), strict=True)
            for fast, ds in itertools.islice(pairs, 12):
                assert fast == write_part10(ds), study
                covered.add(ds.Modality)
                covered.add(str(ds.get("SpecificCharacterSet", "default")))
                covered.add(str(ds.get("BodyPartExamined", "no body part")))
    assert covered >= {"CT", "MR", "CR", "US", "MG", "default", "ISO_IR 100", "ISO_IR 192",
                       "no body part"}
    assert covered - VALID_BODY_PARTS - set(SOP_CLASS_BY_MODALITY) - {
        "default", "ISO_IR 100", "ISO_IR 192", "no body part"
    }, "expected an odd BodyPartExamined value among the compared instances"


# --- DICOM validity -------------------------------------------------------------------------


def test_part10_round_trip(mixed200: list[GeneratedStudy]) -> None:
    for study in mixed200[:50]:
        for data in itertools.islice(study.part10(), 4):
            assert data[128:132] == b"DICM"
            ds = pydicom.dcmread(io.BytesIO(data))
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
            again = write_part10(ds)
            assert again == data
            reread = pydicom.dcmread(io.BytesIO(again))
            assert reread.to_json_dict() == ds.to_json_dict()
            pixels = reread.PixelData
            assert len(pixels) == ds.Rows * ds.Columns * ds.BitsAllocated // 8


def test_instances_are_small(mixed200: list[GeneratedStudy]) -> None:
    sizes = [len(b) for s in mixed200[:30] for b in s.part10()]
    assert max(sizes) < 2200
    assert sum(sizes) / len(sizes) < 1900


def test_sop_classes_and_pixel_modules(mixed200: list[GeneratedStudy]) -> None:
    seen: set[str] = set()
    for study in mixed200:
        if set(study.truth.modalities) <= seen:
            continue
        for ds in _datasets(study):
            seen.add(ds.Modality)
            assert ds.SOPClassUID == SOP_CLASS_BY_MODALITY[ds.Modality]
            assert ds.PhotometricInterpretation == "MONOCHROME2"
            if ds.Modality in ("CT", "MR"):
                assert (ds.BitsAllocated, ds.Rows) == (16, 8)
            else:
                assert (ds.BitsAllocated, ds.Rows) == (8, 16)
            if ds.Modality == "MG":
                assert ds.ImageLaterality in ("R", "L")
                assert ds.ViewPosition in ("CC", "MLO")
                assert ds.PresentationIntentType == "FOR PRESENTATION"
                assert ds.ViewCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert seen == set(SOP_CLASS_BY_MODALITY)


def test_uids_valid_and_unique(mixed200: list[GeneratedStudy]) -> None:
    uids: list[str] = []
    for study in mixed200[:50]:
        uids.append(study.truth.study_uid)
        uids += [s.series_uid for s in study.truth.series]
        uids += [ds.SOPInstanceUID for ds in study.instances()]
    for uid in uids:
        assert UID_RE.match(uid) and len(uid) <= 64, uid
        assert uid.startswith("2.25.")
    assert len(uids) == len(set(uids))


def test_uid_root() -> None:
    study = next(generate_studies(1, seed=9, uid_root="1.2.826.0.1.3680043.10.999"))
    uids = [study.truth.study_uid, *(ds.SOPInstanceUID for ds in study.instances())]
    for uid in uids:
        assert uid.startswith("1.2.826.0.1.3680043.10.999.")
        assert UID_RE.match(uid) and len(uid) <= 64


@pytest.mark.parametrize(
    "kwargs",
    [{"profile": "nope"}, {"id_prefix": "TOO-LONG"}, {"uid_root": "1.02.3"}, {"patients": 0},
     {"patients": 2, "every_patient": True}],
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        next(generate_studies(1, **kwargs))


# --- character sets ------------------------------------------------------------------------


def test_non_ascii_names_decode_with_their_charset(mixed200: list[GeneratedStudy]) -> None:
    latin = _study_with(mixed200, "ISO_IR 100")
    utf8 = _study_with(mixed200, "ISO_IR 192")
    for study, codec in ((latin, "latin_1"), (utf8, "utf-8")):
        data = next(study.part10())
        alphabetic = study.truth.patient_name.split("=")[0]
        assert alphabetic.encode(codec) in data  # encoded with the declared charset
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.SpecificCharacterSet == study.truth.charset
        assert str(ds.PatientName) == study.truth.patient_name
    latin_ds = next(latin.instances())
    assert any(ord(c) > 127 for c in str(latin_ds.PatientName))


def test_ideographic_and_phonetic_groups() -> None:
    studies = list(generate_studies(400, seed=21))
    names = {s.truth.patient_name: s for s in studies if s.truth.charset == "ISO_IR 192"}
    three_groups = [s for n, s in names.items() if n.count("=") == 2]
    assert three_groups, "expected some PN values with ideographic and phonetic groups"
    study = three_groups[0]
    ds = next(study.instances())
    alphabetic, ideographic, phonetic = study.truth.patient_name.split("=")
    assert ds.PatientName.alphabetic == alphabetic
    assert ds.PatientName.ideographic == ideographic
    assert ds.PatientName.phonetic == phonetic
    as_json = study.to_dicom_json()[0]["00100010"]["Value"][0]
    assert as_json == {"Alphabetic": alphabetic, "Ideographic": ideographic,
                       "Phonetic": phonetic}


def test_ascii_patients_have_no_charset(mixed200: list[GeneratedStudy]) -> None:
    ds = next(_study_with(mixed200, None).instances())
    assert "SpecificCharacterSet" not in ds
    str(ds.PatientName).encode("ascii")


# --- counts and distribution ---------------------------------------------------------------


def test_counts_within_ranges(mixed200: list[GeneratedStudy]) -> None:
    for study in mixed200:
        t = study.truth
        assert 1 <= t.series_count <= 6
        assert 1 <= t.instance_count <= 200
        assert t.instance_count == sum(s.instance_count for s in t.series)
    counts = sorted(s.truth.instance_count for s in mixed200)
    assert counts[len(counts) // 2] <= 10, "distribution should be skewed small"
    assert counts[-1] >= 40, "but with some big studies"


def test_profiles() -> None:
    for study in generate_studies(20, seed=4, profile="typical"):
        assert study.truth.series_count == 4
        assert [s.instance_count for s in study.truth.series] == [25] * 4
    for study in generate_studies(60, seed=4, profile="small"):
        assert 1 <= study.truth.series_count <= 2
        assert 1 <= study.truth.instance_count <= 5


def test_distribution(mixed200: list[GeneratedStudy]) -> None:
    truths = [s.truth for s in mixed200]
    modalities = Counter(m for t in truths for m in t.modalities)
    assert set(modalities) == {"CT", "MR", "CR", "US", "MG"}
    charsets = Counter(t.charset for t in truths)
    non_ascii = (charsets["ISO_IR 100"] + charsets["ISO_IR 192"]) / len(truths)
    assert 0.08 <= non_ascii <= 0.35
    assert charsets["ISO_IR 100"] and charsets["ISO_IR 192"]
    issuers = Counter(t.patient_issuer for t in truths)
    assert set(issuers) == {"HOSP_A", "HOSP_B"} and issuers["HOSP_A"] > issuers["HOSP_B"]
    assert {t.accession_issuer for t in truths} >= {"RIS_A", "RIS_B"}
    assert any(t.study_time is None for t in truths)
    assert any(t.study_time and "." in t.study_time for t in truths)
    assert any(t.timezone_offset is None for t in truths)
    assert {t.timezone_offset for t in truths} >= {"+0100", "+0200", "-0500", "-0400"}
    assert all("2015" <= t.study_date[:4] <= "2026" for t in truths)
    schemes = {c.scheme for t in truths for c in t.procedure_codes}
    assert schemes == {"99HOSPA", "LN"}
    assert any(c.code == "49727002" or c.scheme == "SCT" for t in truths for c in t.reason_codes)
    assert any(t.reason_text for t in truths)
    body_parts = {b for t in truths for b in t.body_parts}
    assert body_parts & VALID_BODY_PARTS
    assert body_parts - VALID_BODY_PARTS, "expected a few local / odd BodyPartExamined values"
    assert any(t.laterality for t in truths)
    # MG only for women aged 35+
    for t in truths:
        if "MG" in t.modalities:
            assert t.patient_sex == "F"
            assert int(t.study_date[:4]) - int(t.patient_birth_date[:4]) >= 35


def test_patient_pool(mixed200: list[GeneratedStudy]) -> None:
    patients = {(s.truth.patient_issuer, s.truth.patient_id) for s in mixed200}
    assert len(patients) <= 50  # default pool: count // 4
    assert len(patients) < len(mixed200)
    # one MRN value is deliberately shared by a HOSP_A and a HOSP_B patient
    by_value = Counter(pid for _, pid in patients)
    assert any(n == 2 for n in by_value.values())
    people: dict[tuple[str, str], tuple[str, str, str]] = {}
    for s in mixed200:
        key = (s.truth.patient_issuer, s.truth.patient_id)
        record = (s.truth.patient_name, s.truth.patient_birth_date, s.truth.patient_sex)
        assert people.setdefault(key, record) == record  # same patient, same demographics
    assert len({s.truth.accession_number for s in mixed200}) == len(mixed200)


@pytest.mark.parametrize("seed", range(40))
def test_every_patient_gives_each_pool_patient_a_study(seed: int) -> None:
    spread = list(generate_studies(6, seed=seed, profile="small", patients=3,
                                   every_patient=True))
    people = {(s.truth.patient_issuer, s.truth.patient_id) for s in spread}
    assert len(people) == 3
    # at most two pool patients share an MRN value: two distinct PatientIDs at least
    assert len({s.truth.patient_id for s in spread}) >= 2
    again = generate_studies(6, seed=seed, profile="small", patients=3, every_patient=True)
    assert [s.truth for s in again] == [s.truth for s in spread]


# --- ground truth --------------------------------------------------------------------------


def _truth_from_datasets(datasets: list[Dataset]) -> dict[str, Any]:
    first = datasets[0]
    lateralities = {ds.get("Laterality") for ds in datasets} | {
        ds.get("ImageLaterality") for ds in datasets
    }
    issuer_seq = first.get("IssuerOfAccessionNumberSequence")
    return {
        "study_uid": first.StudyInstanceUID,
        "patient_id": first.PatientID,
        "patient_issuer": first.IssuerOfPatientID,
        "patient_name": str(first.PatientName),
        "accession_number": first.AccessionNumber,
        "accession_issuer": issuer_seq[0].LocalNamespaceEntityID if issuer_seq else None,
        "placer_order_number": first.get("PlacerOrderNumberImagingServiceRequest"),
        "filler_order_number": first.get("FillerOrderNumberImagingServiceRequest"),
        "study_date": first.StudyDate,
        "study_time": first.get("StudyTime"),
        "timezone_offset": first.get("TimezoneOffsetFromUTC"),
        "description": first.StudyDescription,
        "procedure_codes": [
            (i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning)
            for i in first.ProcedureCodeSequence
        ],
        "modalities": sorted({ds.Modality for ds in datasets}),
        "series_count": len({ds.SeriesInstanceUID for ds in datasets}),
        "instance_count": len(datasets),
        "body_parts": sorted({ds.BodyPartExamined for ds in datasets if "BodyPartExamined" in ds}),
        "laterality": sorted(x for x in lateralities if x),
        "institution": first.InstitutionName,
    }


def test_truth_matches_datasets(mixed200: list[GeneratedStudy]) -> None:
    for study in mixed200[:60]:
        t = study.truth
        datasets = _datasets(study)
        expected = {
            "study_uid": t.study_uid,
            "patient_id": t.patient_id,
            "patient_issuer": t.patient_issuer,
            "patient_name": t.patient_name,
            "accession_number": t.accession_number,
            "accession_issuer": t.accession_issuer,
            "placer_order_number": t.placer_order_number,
            "filler_order_number": t.filler_order_number,
            "study_date": t.study_date,
            "study_time": t.study_time,
            "timezone_offset": t.timezone_offset,
            "description": t.description,
            "procedure_codes": [(c.code, c.scheme, c.meaning) for c in t.procedure_codes],
            "modalities": list(t.modalities),
            "series_count": t.series_count,
            "instance_count": t.instance_count,
            "body_parts": list(t.body_parts),
            "laterality": list(t.laterality),
            "institution": t.institution,
        }
        assert _truth_from_datasets(datasets) == expected
        per_series = Counter(ds.SeriesInstanceUID for ds in datasets)
        for series in t.series:
            assert per_series[series.series_uid] == series.instance_count
        numbers = [(ds.SeriesNumber, ds.InstanceNumber) for ds in datasets]
        assert len(set(numbers)) == len(numbers)


def test_truth_systems() -> None:
    for study in generate_studies(40, seed=8):
        t = study.truth
        assert t.patient_system == PATIENT_ID_SYSTEMS[t.patient_issuer]
        if t.accession_issuer:
            assert t.accession_system == ACCESSION_SYSTEMS[t.accession_issuer]
        else:
            assert t.accession_system == "urn:imaging-bridge:accession"


def test_manifest_round_trip(tmp_path: Path, mixed200: list[GeneratedStudy]) -> None:
    path = tmp_path / "manifest.json"
    written = write_manifest(path, mixed200[:20], parameters={"seed": 11})
    assert written["totals"]["studies"] == 20
    assert written["totals"]["instances"] == sum(s.truth.instance_count for s in mixed200[:20])
    data = json.loads(path.read_text("utf-8"))
    assert data["format"] == "imaging-fhir-bridge/samples-manifest"
    assert data["studies"][0]["patient_system"].startswith("https://")
    assert read_manifest(path) == [s.truth for s in mixed200[:20]]
    assert manifest_dict([s.truth for s in mixed200[:20]])["totals"] == written["totals"]


def test_instances_json(mixed200: list[GeneratedStudy]) -> None:
    study = mixed200[0]
    docs = instances_json(study)
    assert len(docs) == study.truth.instance_count
    assert all("7FE00010" not in d for d in docs)
    assert docs[0]["0020000D"]["Value"] == [study.truth.study_uid]
    with_pixels = study.to_dicom_json(include_pixel_data=True)
    assert "InlineBinary" in with_pixels[0]["7FE00010"]
    # a DICOM JSON instance converts back to an equal data set
    back = Dataset.from_json(docs[0])
    assert back.SOPInstanceUID == next(study.instances()).SOPInstanceUID


def test_truth_is_json_serialisable(mixed200: list[GeneratedStudy]) -> None:
    text = json.dumps([s.truth.to_dict() for s in mixed200], ensure_ascii=False)
    again = [StudyTruth.from_dict(d) for d in json.loads(text)]
    assert again == [s.truth for s in mixed200]


# --- load helpers --------------------------------------------------------------------------


def test_count_stow_response() -> None:
    response = Dataset()
    ok = Dataset()
    ok.ReferencedSOPInstanceUID = "1.2.3"
    bad = Dataset()
    bad.ReferencedSOPInstanceUID = "1.2.4"
    bad.FailureReason = 0xA700
    response.ReferencedSOPSequence = [ok]
    response.FailedSOPSequence = [bad]
    stored, failed, reasons = _count_response(response, 2)
    assert (stored, failed) == (1, 1)
    assert "1.2.4" in reasons[0]
    assert _count_response(Dataset(), 3)[:2] == (3, 0)


# --- EHR seeding ---------------------------------------------------------------------------


def test_human_names() -> None:
    names = human_names("Yamada^Tarou=山田^太郎=やまだ^たろう")
    assert names[0] == {"use": "official", "text": "Tarou Yamada", "family": "Yamada",
                        "given": ["Tarou"]}
    assert names[1]["family"] == "山田" and names[1]["text"] == "山田太郎"
    assert names[1]["extension"] == [{"url": EN_REPRESENTATION, "valueCode": "IDE"}]
    assert names[2]["extension"][0]["valueCode"] == "SYL"
    assert human_names("Müller^Jürgen")[0]["text"] == "Jürgen Müller"
    assert human_names("Adams^Laura^^Dr")[0] == {
        "use": "official", "text": "Dr Laura Adams", "family": "Adams", "given": ["Laura"],
        "prefix": ["Dr"],
    }


def test_patient_and_service_request_resources() -> None:
    truth = next(
        s.truth for s in generate_studies(50, seed=12)
        if s.truth.placer_order_number and s.truth.accession_issuer == "RIS_A"
    )
    patient = patient_resource(truth)
    assert patient["identifier"][0]["system"] == PATIENT_ID_SYSTEMS[truth.patient_issuer]
    assert patient["identifier"][0]["value"] == truth.patient_id
    assert patient["birthDate"] == (
        f"{truth.patient_birth_date[:4]}-{truth.patient_birth_date[4:6]}-"
        f"{truth.patient_birth_date[6:]}"
    )
    assert patient["gender"] in ("male", "female", "other")
    order = service_request_resource(truth, "42")
    types = {i["type"]["coding"][0]["code"]: i for i in order["identifier"]}
    assert set(types) == {"ACSN", "PLAC", "FILL"}
    assert all(i["type"]["coding"][0]["system"] == V2_0203 for i in order["identifier"])
    assert types["ACSN"]["system"] == "https://hospital-a.example.org/fhir/sid/accession"
    assert types["ACSN"]["value"] == truth.accession_number
    assert types["PLAC"]["system"] == "https://hospital-a.example.org/fhir/sid/placer-order"
    assert types["FILL"]["system"] == "https://hospital-a.example.org/fhir/sid/filler-order"
    assert (order["status"], order["intent"]) == ("active", "order")
    assert order["subject"] == {"reference": "Patient/42"}
    codes = {(c["system"], c["code"]) for c in order["code"]["coding"]}
    assert codes == {
        ({"LN": "http://loinc.org"}.get(c.scheme, "https://hospital-a.example.org/fhir/"
                                        "CodeSystem/procedure"), c.code)
        for c in truth.procedure_codes
    }


def test_seed_ehr_against_fake_server() -> None:
    truths = [s.truth for s in generate_studies(240, seed=13)]
    fake = FakeFhir(bundle_type="batch", max_entries=100)
    client = httpx.Client(transport=httpx.MockTransport(fake.sync_handler),
                          base_url="http://fhir.test/fhir/")
    result = seed_ehr(truths, client=client, batch_size=100)
    distinct = {(t.patient_issuer, t.patient_id) for t in truths}
    assert result.ok, result.errors
    assert result.patients_created == len(distinct) == len(fake.resources["Patient"])
    assert result.service_requests_created == len(truths)
    assert fake.batches == -(-len(distinct) // 100) + -(-len(truths) // 100)
    for truth in truths[:20]:
        patient_id = result.patient_ids[(truth.patient_issuer, truth.patient_id)]
        order = fake.resources["ServiceRequest"][result.service_request_ids[truth.study_uid]]
        assert order["subject"]["reference"] == f"Patient/{patient_id}"
        assert fake.resources["Patient"][patient_id]["identifier"][0]["value"] == truth.patient_id

    again = seed_ehr(truths, client=client)
    assert again.patients_created == 0 and again.patients_existing == len(distinct)
    assert again.service_requests_existing == len(truths)


def test_seed_ehr_fractions() -> None:
    truths = [s.truth for s in generate_studies(120, seed=14)]
    distinct = {(t.patient_issuer, t.patient_id) for t in truths}
    chosen = select_patients(truths, 0.5, seed=14)
    assert chosen == select_patients(truths, 0.5, seed=14)
    assert len(chosen) == round(len(distinct) / 2)
    fake = FakeFhir(bundle_type="batch", max_entries=100)
    client = httpx.Client(transport=httpx.MockTransport(fake.sync_handler),
                          base_url="http://fhir.test/fhir/")
    result = seed_ehr(truths, client=client, patients_fraction=0.5, seed=14)
    assert result.patients_created == len(chosen)
    with_patient = [t for t in truths if (t.patient_issuer, t.patient_id) in chosen]
    assert result.service_requests_created == len(with_patient)
    assert result.studies_without_order == len(truths) - len(with_patient)
    assert 0 < len(with_patient) < len(truths)
