"""The generated dose SRs and text reports: deterministic, in the generated study, realistic."""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from samples.generator import generate_studies
from samples.rdsr import RDSR_SOP_CLASS_UID, dose_sr
from samples.records import study_records
from samples.report_sr import BASIC_TEXT_SR_SOP_CLASS_UID, text_report_sr


def _studies() -> list:  # type: ignore[type-arg]
    return list(generate_studies(40, seed=11))


def test_same_study_and_seed_give_identical_dose_sr_and_report() -> None:
    for first, second in zip(_studies(), _studies(), strict=True):
        a, b = dose_sr(first.truth, seed=2), dose_sr(second.truth, seed=2)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a[0].to_json_dict() == b[0].to_json_dict()
        assert (text_report_sr(first.truth)[0].to_json_dict()
                == text_report_sr(second.truth)[0].to_json_dict())


def test_dose_sr_belongs_to_the_generated_study_and_has_realistic_values() -> None:
    kinds = set()
    for study in _studies():
        made = dose_sr(study.truth)
        modalities = set(study.truth.modalities)
        if not modalities & {"CT", "CR", "DX", "MG"}:
            assert made is None
            continue
        assert made is not None
        ds, truth = made
        kinds.add(truth.kind)
        assert ds.SOPClassUID == RDSR_SOP_CLASS_UID
        assert ds.StudyInstanceUID == study.truth.study_uid
        assert ds.PatientID == study.truth.patient_id
        assert ds.AccessionNumber == study.truth.accession_number
        assert truth.events
        if truth.kind == "CT":
            assert ds.ContentTemplateSequence[0].TemplateIdentifier == "10011"
            for event in truth.events:
                assert event.ctdivol_mgy is not None and 1.0 <= event.ctdivol_mgy <= 80.0
                assert event.dlp_mgy_cm is not None
                assert 10.0 <= event.dlp_mgy_cm <= 3000.0
            assert truth.dlp_total_mgy_cm == round(
                sum(e.dlp_mgy_cm or 0.0 for e in truth.events), 2)
        else:
            assert ds.ContentTemplateSequence[0].TemplateIdentifier == "10001"
            assert truth.dap_total_gy_m2 is not None and 1e-7 < truth.dap_total_gy_m2 < 1e-2
    assert kinds == {"CT", "projection"}


def test_report_sr_flags_and_verifier_agree() -> None:
    for study in _studies()[:10]:
        ds, truth = text_report_sr(study.truth, verified=True)
        assert ds.SOPClassUID == BASIC_TEXT_SR_SOP_CLASS_UID
        assert (ds.CompletionFlag, ds.VerificationFlag) == ("COMPLETE", "VERIFIED")
        assert str(ds.VerifyingObserverSequence[0].VerifyingObserverName) == truth.verifier
        ds, truth = text_report_sr(study.truth, verified=False)
        assert (ds.CompletionFlag, ds.VerificationFlag) == ("PARTIAL", "UNVERIFIED")
        assert "VerifyingObserverSequence" not in ds


def test_generated_srs_round_trip_through_part10() -> None:
    study = next(s for s in _studies() if "CT" in s.truth.modalities)
    made = dose_sr(study.truth)
    assert made is not None
    for ds in (made[0], text_report_sr(study.truth)[0]):
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        back = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
        assert back.to_json_dict() == ds.to_json_dict()


def test_a_studys_record_files_are_its_report_dose_and_every_nth_pdf() -> None:
    ct = next(s for s in generate_studies(24, seed=16) if "CT" in s.truth.modalities)
    mr = next(s for s in generate_studies(24, seed=16) if "MR" in s.truth.modalities)
    first = study_records(ct, seed=2, index=0, pdf_every=5)
    classes = [pydicom.dcmread(io.BytesIO(f)).SOPClassUID for f in first.files]
    assert classes == ["1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.88.67",
                       "1.2.840.10008.5.1.4.1.1.104.1"]
    assert first.dose is not None and first.pdf is not None
    assert all(pydicom.dcmread(io.BytesIO(f)).StudyInstanceUID == ct.study_uid
               for f in first.files)
    assert len(study_records(ct, seed=2, index=1).files) == 2  # no PDF
    assert study_records(ct, seed=2, index=1).files == study_records(ct, seed=2, index=1).files
    only_report = study_records(mr, seed=2, index=1)
    assert len(only_report.files) == 1 and only_report.dose is None
