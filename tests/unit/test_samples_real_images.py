"""Real images from registry packages, re-identified as studies of the synthetic patients."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from samples.generator import generate_studies
from samples.real_images import (
    REAL_IMAGES,
    TRANSFER_SYNTAXES,
    RealStudy,
    real_studies,
    source_path,
)

ORIGINS = Path(__file__).resolve().parents[2] / "samples" / "REAL_IMAGES.md"


@pytest.fixture(scope="module")
def patients() -> list:  # type: ignore[type-arg]
    return [s.patient for s in generate_studies(12, seed=5, id_prefix="RI")]


@pytest.fixture(scope="module")
def studies(patients: list) -> list[RealStudy]:  # type: ignore[type-arg]
    return real_studies(patients, seed=5, id_prefix="RI")


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def test_every_listed_file_is_installed_with_the_listed_syntax_modality_and_frames() -> None:
    for source in REAL_IMAGES:
        ds = pydicom.dcmread(source_path(source), stop_before_pixels=True)
        assert ds.file_meta.TransferSyntaxUID == source.transfer_syntax, source.key
        assert ds.Modality == source.modality, source.key
        assert int(ds.get("NumberOfFrames", 1)) == source.frames, source.key


def test_the_set_covers_the_modalities_and_transfer_syntaxes_of_issue_13() -> None:
    assert {"CT", "MR", "CR", "US"} <= {s.modality for s in REAL_IMAGES}
    assert any(s.frames > 1 for s in REAL_IMAGES)
    syntaxes = {TRANSFER_SYNTAXES[s.transfer_syntax] for s in REAL_IMAGES}
    assert {"JPEG 2000 Lossless", "JPEG-LS Lossless", "RLE Lossless", "JPEG Baseline",
            "Explicit VR Little Endian"} <= syntaxes


def test_the_origin_table_names_every_file_its_package_and_licence() -> None:
    table = ORIGINS.read_text("utf-8")
    for source in REAL_IMAGES:
        row = next(line for line in table.splitlines() if f"`{source.filename}`" in line)
        assert source.package in row and source.licence in row and source.origin in row


def test_pixel_data_and_transfer_syntax_are_kept_byte_for_byte(
    studies: list[RealStudy],
) -> None:
    for study in studies:
        out = _read(next(study.part10()))
        original = pydicom.dcmread(source_path(study.source))
        assert out.file_meta.TransferSyntaxUID == study.source.transfer_syntax
        assert out.PixelData == original.PixelData, study.source.key
        assert out.SOPClassUID == original.SOPClassUID


def test_nothing_identifying_of_the_source_is_left(studies: list[RealStudy]) -> None:
    for study in studies:
        data = next(study.part10())
        original = pydicom.dcmread(source_path(study.source), stop_before_pixels=True)
        found: list[str] = []
        for elem in original.iterall():  # every UID and name, nested ones too
            if elem.VR in ("UI", "PN") and elem.value:
                values = elem.value if elem.VM > 1 else [elem.value]
                found.extend(str(v) for v in values if not str(v).startswith("1.2.840.10008."))
        for key in ("PatientID", "AccessionNumber", "DeviceSerialNumber", "StudyID"):
            value = str(original.get(key, "") or "")
            if len(value) >= 4:
                found.append(value)
        header = data[: data.rfind(b"\xe0\x7f\x10\x00")]  # up to Pixel Data
        left = [v for v in set(found) if v.encode() in header]
        assert not left, f"{study.source.key}: {left}"
        out = _read(data)
        assert not any(elem.tag.is_private for elem in out.iterall()), study.source.key
        assert out.PatientIdentityRemoved == "YES"
        assert out.InstitutionName in ("Hospital A Medical Center", "Hospital B Clinic")
        assert "StationName" not in out and "DeviceSerialNumber" not in out


def test_each_study_is_its_patients_and_matches_its_truth(
    studies: list[RealStudy], patients: list  # type: ignore[type-arg]
) -> None:
    distinct = list({(p.issuer, p.patient_id): p for p in patients}.values())
    for index, study in enumerate(studies):
        out = _read(next(study.part10()))
        truth = study.truth
        assert study.patient == distinct[index % len(distinct)]
        assert (out.PatientID, out.IssuerOfPatientID) == (truth.patient_id, truth.patient_issuer)
        assert str(out.PatientName) == truth.patient_name
        assert out.PatientBirthDate == truth.patient_birth_date
        assert out.StudyInstanceUID == truth.study_uid == study.study_uid
        assert out.SeriesInstanceUID == truth.series[0].series_uid
        assert out.AccessionNumber == truth.accession_number
        assert out.AccessionNumber.startswith("RIR")
        assert (out.IssuerOfAccessionNumberSequence[0].LocalNamespaceEntityID
                == truth.accession_issuer)
        assert out.StudyDate == truth.study_date and out.StudyTime == truth.study_time
        assert out.Modality == truth.modalities[0]
        assert out.SOPClassUID == truth.series[0].sop_class_uid
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


def test_same_arguments_give_the_same_bytes_and_another_prefix_other_identifiers(
    patients: list,  # type: ignore[type-arg]
) -> None:
    one = real_studies(patients, seed=5, id_prefix="RI", keys=["mr-rle", "us-jpeg-baseline"])
    two = real_studies(patients, seed=5, id_prefix="RI", keys=["mr-rle", "us-jpeg-baseline"])
    other = real_studies(patients, seed=5, id_prefix="RJ", keys=["mr-rle", "us-jpeg-baseline"])
    assert [next(s.part10()) for s in one] == [next(s.part10()) for s in two]
    uids = {s.study_uid for s in one}
    assert uids.isdisjoint({s.study_uid for s in other})
    assert {s.truth.accession_number for s in one}.isdisjoint(
        {s.truth.accession_number for s in other})


def test_multi_frame_enhanced_mr_keeps_its_frames_with_a_new_frame_of_reference() -> None:
    patients = [s.patient for s in generate_studies(1, seed=1)]
    (study,) = real_studies(patients, keys=["mr-multiframe-jpegls"])
    out = _read(next(study.part10()))
    original = pydicom.dcmread(source_path(study.source), stop_before_pixels=True)
    assert int(out.NumberOfFrames) == 10
    assert str(out.FrameOfReferenceUID) != str(original.FrameOfReferenceUID)
    again = _read(next(study.part10()))
    assert again.FrameOfReferenceUID == out.FrameOfReferenceUID  # deterministic


def test_without_patients_or_with_an_unknown_key_it_refuses() -> None:
    with pytest.raises(ValueError, match="at least one patient"):
        real_studies([])
    patients = [s.patient for s in generate_studies(1, seed=1)]
    with pytest.raises(KeyError):
        real_studies(patients, keys=["no-such-image"])
