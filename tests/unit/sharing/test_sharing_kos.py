"""The KOS manifest: a Key Object Selection Document titled Manifest, referencing every
instance of the study with its SOP class and where to retrieve it; parsed back by pydicom,
accepted by dcmtk's dsr2xml and dicom3tools' dciodvfy; deterministic."""

from __future__ import annotations

import copy
import io
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from bridge.sharing.errors import ManifestDataError
from bridge.sharing.kos import (
    KOS_SOP_CLASS,
    describe,
    manifest_part10,
    referenced,
)
from bridge.sharing.uids import manifest_series_uid
from tests.unit.sharing.kos_cases import (
    GATEWAY,
    generated,
    kos_json,
    manifest_of,
    read_golden,
)
from tests.unit.sharing.sharing_helpers import BASIC_TEXT_SR, element, instance


def written(tmp_path: Path, instances: list[dict[str, object]] | None = None) -> Path:
    manifest = kos_json(instances if instances is not None else generated().to_dicom_json())
    path = tmp_path / "kos.dcm"
    path.write_bytes(manifest_part10(manifest))
    return path


def test_the_manifest_references_every_instance_with_its_sop_class() -> None:
    study = generated()
    ds = manifest_of(study.to_dicom_json())
    expected = sorted((str(i.SeriesInstanceUID), str(i.SOPClassUID), str(i.SOPInstanceUID))
                      for i in study.instances())
    assert sorted(referenced(ds)) == expected
    assert len(expected) == study.truth.instance_count == 4
    assert ds.SOPClassUID == KOS_SOP_CLASS
    title = ds.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == (
        "113030", "DCM", "Manifest")
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "2010"
    assert [item.ValueType for item in ds.ContentSequence] == ["IMAGE"] * 4
    assert "CompletionFlag" not in ds  # not in the KOS IOD (PS3.3 A.35.4)


def test_each_series_item_names_the_gateway_study_url_and_retrieve_location() -> None:
    study = generated()
    ds = manifest_of(study.to_dicom_json())
    items = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert len(items) == study.truth.series_count == 2
    for item in items:
        assert item.RetrieveURL == f"{GATEWAY}/studies/{study.study_uid}"
        assert item.RetrieveLocationUID == "2.25.311853238745329171262958447283573442002"


def test_the_manifest_is_a_new_series_of_the_same_study_with_the_patient_copied() -> None:
    study = generated()
    source = next(study.instances())
    ds = manifest_of(study.to_dicom_json())
    assert ds.StudyInstanceUID == study.study_uid
    assert ds.Modality == "KO"
    assert ds.SeriesInstanceUID == manifest_series_uid(study.study_uid)
    assert ds.SeriesInstanceUID not in {str(i.SeriesInstanceUID) for i in study.instances()}
    for keyword in ("PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                    "AccessionNumber", "StudyDate"):
        assert ds[keyword].value == source[keyword].value, keyword
    assert str(ds.PatientName) == str(source.PatientName)


def test_the_part10_file_parses_back_to_the_same_manifest() -> None:
    manifest = kos_json(generated().to_dicom_json())
    back = pydicom.dcmread(io.BytesIO(manifest_part10(manifest)))
    assert back.file_meta.MediaStorageSOPClassUID == KOS_SOP_CLASS
    assert back.file_meta.MediaStorageSOPInstanceUID == manifest["00080018"]["Value"][0]
    assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert back.to_json_dict() == manifest


def test_the_json_is_what_pydicom_makes_of_it() -> None:
    manifest = kos_json(generated().to_dicom_json())
    assert Dataset.from_json(manifest).to_json_dict() == manifest
    assert describe(manifest_of(generated().to_dicom_json()))["references"]


def test_non_ascii_names_are_written_in_utf8() -> None:
    name = {"Alphabetic": "Müller^Zoë", "Ideographic": "ミュラー^ゾエ"}
    manifest = kos_json([instance(**{"00100010": element("PN", name)})])
    back = pydicom.dcmread(io.BytesIO(manifest_part10(manifest)))
    assert back.SpecificCharacterSet == "ISO_IR 192"
    assert back.to_json_dict()["00100010"]["Value"] == [name]


def test_a_generated_study_gives_the_golden_manifest() -> None:
    assert kos_json(generated().to_dicom_json()) == read_golden("kos_seed7_study1.json")


def test_rebuilding_gives_the_same_bytes_and_a_changed_study_a_new_manifest() -> None:
    instances = generated().to_dicom_json()
    first = manifest_of(instances)
    assert manifest_part10(kos_json(copy.deepcopy(instances))) == \
        manifest_part10(kos_json(instances))
    fewer = manifest_of(instances[:-1])
    assert fewer.SOPInstanceUID != first.SOPInstanceUID
    assert fewer.SeriesInstanceUID == first.SeriesInstanceUID


def test_the_stored_manifest_is_not_referenced_by_the_next_one() -> None:
    instances = generated().to_dicom_json()
    first = manifest_of(instances)
    again = manifest_of([*instances, kos_json(instances)])
    assert again.SOPInstanceUID == first.SOPInstanceUID
    assert KOS_SOP_CLASS not in {sop_class for _, sop_class, _ in referenced(again)}


def test_a_non_image_instance_is_a_composite_item() -> None:
    ds = manifest_of([instance(), instance(series="1.2.3.4.2", sop="1.2.3.4.2.1",
                                           sop_class=BASIC_TEXT_SR, modality="SR",
                                           image=False)])
    assert [item.ValueType for item in ds.ContentSequence] == ["IMAGE", "COMPOSITE"]


@pytest.mark.parametrize(("tag", "bad", "label"), [
    ("00080018", "1.2.03", "(0008,0018) SOPInstanceUID"),
    ("0020000E", None, "(0020,000E) SeriesInstanceUID"),
    ("00080016", "../x", "(0008,0016) SOPClassUID"),
])
def test_a_malformed_uid_is_an_error_naming_the_attribute(
    tag: str, bad: str | None, label: str
) -> None:
    broken = instance()
    broken[tag] = element("UI", bad) if bad is not None else element("UI")
    with pytest.raises(ManifestDataError) as caught:
        manifest_of([instance(sop="1.2.3.4.1.2"), broken])
    assert caught.value.tag == label
    assert label in caught.value.message


def test_instances_of_two_studies_are_refused() -> None:
    with pytest.raises(ManifestDataError, match=r"\(0020,000D\) StudyInstanceUID differs"):
        manifest_of([instance(), instance(study="1.2.3.5", sop="1.2.3.5.1")])


# --- the real DICOM tools ------------------------------------------------------------------

def _tool(name: str, package: str) -> str:
    """The path of a Debian tool `make setup` installs (docker/local/ensure-system.sh); its
    absence is a broken set-up, reported as a failure rather than hidden by a skip."""
    path = shutil.which(name)
    assert path is not None, f"{name} not installed (apt-get install {package}; make setup)"
    return path


def dsr2xml(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("dsr2xml", "dcmtk"), str(path)], capture_output=True,
                          text=True, timeout=60, check=False)


def dciodvfy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("dciodvfy", "dicom3tools"), str(path)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_dsr2xml_reads_the_manifest_as_a_key_object_selection_document(tmp_path: Path) -> None:
    done = dsr2xml(written(tmp_path))
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if line.startswith(("E:", "F:"))]
    assert '<report type="Key Object Selection Document">' in done.stdout
    assert "<meaning>Manifest</meaning>" in done.stdout


def test_dsr2xml_fails_on_a_manifest_without_its_title(tmp_path: Path) -> None:
    path = written(tmp_path)
    ds = pydicom.dcmread(path)
    del ds.ConceptNameCodeSequence
    ds.save_as(path)
    assert dsr2xml(path).returncode != 0


def test_dciodvfy_finds_no_error_in_the_manifest(tmp_path: Path) -> None:
    done = dciodvfy(written(tmp_path))
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert not [line for line in report.splitlines() if line.startswith("Error")], report
    # Retrieve URL (0008,1190) in the series items is IHE XDS-I.b's extension of the IOD
    # (IHE RAD TF-3 RAD-68, WADO-RS retrieval); nothing else is outside the IOD
    extra = [line for line in report.splitlines()
             if "Attribute is not present in standard DICOM IOD" in line]
    assert len(extra) == 2, report  # one per series item
    assert all("(0x0008,0x1190) UR Retrieve URL" in line for line in extra), report


def test_dciodvfy_reports_a_manifest_without_evidence(tmp_path: Path) -> None:
    path = written(tmp_path)
    ds = pydicom.dcmread(path)
    del ds.CurrentRequestedProcedureEvidenceSequence
    ds.save_as(path)
    done = dciodvfy(path)
    assert done.returncode != 0
    assert "CurrentRequestedProcedureEvidenceSequence" in done.stdout + done.stderr
