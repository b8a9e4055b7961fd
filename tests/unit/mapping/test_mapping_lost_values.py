"""Values the archive already lost must not vanish silently (issue 12 item 4).

Each input below is what the real Orthanc 1.10 + DICOMweb 1.7 sends in WADO-RS metadata
(measured against the dev stack) or what pydicom gives for a Part-10 file: a non-numeric IS
arrives from Orthanc as an empty ``Value`` array; bytes undecodable under an unknown
SpecificCharacterSet are dropped by Orthanc and guessed as Latin-1 by pydicom; invalid UTF-8
under ISO_IR 192 is U+FFFD from pydicom (and from decoders that replace, as Java's do).
Each gives a warning naming the tag; an unusable PatientID is a data error, never a link to
another Patient.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from mapping_helpers import ENDPOINT, assert_valid, default_engine, study
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian

from bridge.errors import DicomDataError
from bridge.mapping import MappingResult, map_files
from bridge.sync import recorded_warnings

ENGINE = default_engine()
PATIENT_ID = "(0010,0020) PatientID"
PATIENT_NAME = "(0010,0010) PatientName"
CHARSET = "(0008,0005) SpecificCharacterSet"


def mapped(**kwargs: Any) -> MappingResult:
    result = ENGINE.map_study(study(**kwargs), endpoint=ENDPOINT)
    assert_valid(result)
    return result


def codes_by_tag(result: MappingResult) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for warning in result.warnings:
        out.setdefault(warning.tag, set()).add(warning.code)
    return out


# --- (a) non-numeric IS ----------------------------------------------------------------------


def test_is_value_the_archive_dropped_as_an_empty_value_array_gives_a_warning() -> None:
    # Orthanc answers {"vr": "IS", "Value": []} for SeriesNumber "abc" / InstanceNumber "1x"
    result = mapped(
        series_attrs={1: {"00200011": {"vr": "IS", "Value": []}}},
        instance_attrs={(1, 2): {"00200013": {"vr": "IS", "Value": []}}},
    )
    series = result.imaging_study["series"][0]
    assert "number" not in series
    assert [i.get("number") for i in series["instance"]] == [1, None]
    tags = codes_by_tag(result)
    assert tags["(0020,0011) SeriesNumber"] == {"invalid-integer"}
    assert tags["(0020,0013) InstanceNumber"] == {"invalid-integer"}


def test_an_absent_is_value_gives_no_warning() -> None:
    # no Value at all is an empty Type 2 value (PS3.18 F.2.5), not a lost one
    result = mapped(series_attrs={1: {"00200011": {"vr": "IS"}}})
    assert "number" not in result.imaging_study["series"][0]
    assert result.warnings == []


def test_several_values_of_a_single_valued_is_give_a_warning() -> None:
    result = mapped(series_attrs={1: {"SeriesNumber": [3, 4]}})
    assert result.imaging_study["series"][0]["number"] == 3
    assert codes_by_tag(result)["(0020,0011) SeriesNumber"] == {"multiple-values"}


# --- (b) unknown SpecificCharacterSet ------------------------------------------------------------


def test_unknown_character_set_warns_and_leaves_the_patient_name_out() -> None:
    # Orthanc drops the bytes it cannot decode: "M\xfcller" under "ISO_IR 999" -> "Mller"
    result = mapped(
        study_attrs={"SpecificCharacterSet": "ISO_IR 999", "PatientName": "Mller^Jrg",
                     "PatientID": None},
    )
    tags = codes_by_tag(result)
    assert tags[CHARSET] == {"unknown-character-set"}
    assert "undecodable-characters" in tags[PATIENT_NAME]
    assert result.patient.names == ()
    # the term is what the site needs to see; it says nothing about the patient
    kept = {w.tag: w.value for w in recorded_warnings.to_stored(result.warnings)}
    assert kept[CHARSET] == "ISO_IR 999" and kept[PATIENT_NAME] is None


def test_unknown_character_set_makes_the_patient_id_a_data_error() -> None:
    # "P\xc41" under "ISO_IR 999" reaches us as "P1": it would link another patient's P1
    with pytest.raises(DicomDataError) as caught:
        ENGINE.map_study(
            study(study_attrs={"SpecificCharacterSet": "ISO_IR 999", "PatientID": "P1"}),
            endpoint=ENDPOINT,
        )
    assert caught.value.tag == PATIENT_ID
    assert "(0008,0005)" in caught.value.message
    assert "P1" not in caught.value.message


@pytest.mark.parametrize(
    "charset",
    ["ISO_IR 100", ["", "ISO 2022 IR 87"], "ISO_IR 192", "GB18030", "iso_ir 100", None],
)
def test_known_character_sets_give_no_warning(charset: Any) -> None:
    result = mapped(study_attrs={"SpecificCharacterSet": charset})
    assert result.warnings == []
    assert result.patient.value == "P0001"


# --- (c) invalid UTF-8 under ISO_IR 192 ----------------------------------------------------------


def test_invalid_utf8_patient_name_is_left_out_with_a_warning() -> None:
    # a decoder that replaces invalid UTF-8 sequences leaves U+FFFD (PS3.5 6.1)
    result = mapped(
        study_attrs={"SpecificCharacterSet": "ISO_IR 192", "PatientName": "M\ufffdller^J\ufffd"}
    )
    assert result.patient.names == ()
    assert codes_by_tag(result)[PATIENT_NAME] == {"undecodable-characters"}


# --- (d) PatientID: several values or otherwise unusable -------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (["P1", "P2"], "2 values"),
        ("P1\\P2", "backslash"),
        ("   ", "blank"),
        ("P1\x01", "control characters"),
        ("P" * 65, "longer than 64"),
        ("P\ufffd1", "undecodable"),
        ({"not": "a string"}, "not a string"),
    ],
)
def test_an_unusable_patient_id_is_a_data_error_naming_the_tag(value: Any, why: str) -> None:
    with pytest.raises(DicomDataError) as caught:
        ENGINE.map_study(study(study_attrs={"PatientID": value}), endpoint=ENDPOINT)
    assert caught.value.tag == PATIENT_ID
    assert why in caught.value.message
    # the message is recorded and logged: it never carries the identifier
    assert "P1" not in caught.value.message and "P2" not in caught.value.message


def test_a_single_padded_patient_id_is_used() -> None:
    result = mapped(study_attrs={"PatientID": " P0001 "})
    assert result.patient.value == "P0001"
    assert result.warnings == []


def test_an_absent_patient_id_is_still_a_warning_for_the_sync_to_judge() -> None:
    # Type 2 (PS3.3 C.7.1.1): the runner decides by patient policy
    result = mapped(study_attrs={"PatientID": None})
    assert result.patient.value is None
    assert codes_by_tag(result)[PATIENT_ID] == {"missing-patient-id"}


def test_several_accession_numbers_give_a_warning() -> None:
    result = mapped(study_attrs={"AccessionNumber": ["A1", "A2"]})
    assert [link.value for link in result.service_requests] == ["A1"]
    assert codes_by_tag(result)["(0008,0050) AccessionNumber"] == {"multiple-values"}


# --- the same through local Part-10 files (pydicom) -----------------------------------------------


def _part10(tmp_path: Path, charset: str | None, **raw: tuple[str, bytes]) -> Path:
    """A Part-10 file whose ``raw`` attributes hold exactly the given bytes.

    pydicom re-encodes text with the data set's character set when writing (invalid UTF-8
    would be written as a valid U+FFFD), so each is written as a placeholder of the same
    length whose bytes are then replaced.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4.1.1")
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4.1.1"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.1"
    ds.Modality = "OT"
    ds.StudyDate = "20240101"
    values = {"PatientID": ("LO", b"P0001"), "PatientName": ("PN", b"Doe^Jane"), **raw}
    patches: dict[bytes, bytes] = {}
    for n, (keyword, (vr, data)) in enumerate(sorted(values.items())):
        padded = data + b" " if len(data) % 2 else data
        tag = Tag(keyword)
        if vr == "IS":
            # ASCII is written as it is; pydicom would refuse "abc" as an IS value
            ds[tag] = RawDataElement(tag, vr, len(padded), padded, 0, False, True)
            continue
        placeholder = "QRSTUVWXYZ"[n] * len(padded)
        setattr(ds, keyword, placeholder)
        patches[placeholder.encode("ascii")] = padded
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    blob = buffer.getvalue()
    for written, data in patches.items():
        assert blob.count(written) == 1
        blob = blob.replace(written, data)
    path = tmp_path / "instance.dcm"
    path.write_bytes(blob)
    return path


def test_part10_non_numeric_is_maps_with_a_warning(tmp_path: Path) -> None:
    path = _part10(tmp_path, "ISO_IR 100", SeriesNumber=("IS", b"abc"),
                   InstanceNumber=("IS", b"1x"))
    result = ENGINE.map_study(map_files([path]), endpoint=ENDPOINT)
    assert_valid(result)
    series = result.imaging_study["series"][0]
    assert "number" not in series and "number" not in series["instance"][0]
    tags = codes_by_tag(result)
    assert tags["(0020,0011) SeriesNumber"] == {"invalid-integer"}
    assert tags["(0020,0013) InstanceNumber"] == {"invalid-integer"}
    by_tag = {w.tag: w for w in result.warnings}
    assert by_tag["(0020,0011) SeriesNumber"].value == "abc"


def test_part10_unknown_character_set_warns(tmp_path: Path) -> None:
    # pydicom guesses Latin-1 for a term it does not know: the name may be wrong, so it is
    # left out; the PatientID cannot be trusted either
    path = _part10(tmp_path, "ISO_IR 999", PatientName=("PN", b"M\xfcller^J\xf6rg"),
                   PatientID=("LO", b"P\xc41"))
    with pytest.raises(DicomDataError) as caught:
        ENGINE.map_study(map_files([path]), endpoint=ENDPOINT)
    assert caught.value.tag == PATIENT_ID
    instances = map_files([path])
    for instance in instances:
        del instance["00100020"]
    result = ENGINE.map_study(instances, endpoint=ENDPOINT)
    assert codes_by_tag(result)[CHARSET] == {"unknown-character-set"}
    assert result.patient.names == ()


def test_part10_invalid_utf8_name_is_left_out_with_a_warning(tmp_path: Path) -> None:
    path = _part10(tmp_path, "ISO_IR 192", PatientName=("PN", b"M\xfcller^J\xc3"))
    result = ENGINE.map_study(map_files([path]), endpoint=ENDPOINT)
    assert result.patient.names == ()
    assert codes_by_tag(result)[PATIENT_NAME] == {"undecodable-characters"}


def test_part10_patient_id_with_two_values_is_a_data_error(tmp_path: Path) -> None:
    path = _part10(tmp_path, None, PatientID=("LO", b"P1\\P2"))
    with pytest.raises(DicomDataError) as caught:
        ENGINE.map_study(map_files([path]), endpoint=ENDPOINT)
    assert caught.value.tag == PATIENT_ID
