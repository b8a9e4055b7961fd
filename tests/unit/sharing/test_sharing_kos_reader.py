"""The consumer reads a KOS (Part 10) into a typed manifest: what the source's builder
writes is read back exactly, and a manifest that is not one is refused naming the tag."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from bridge.sharing.errors import ManifestFormatError
from bridge.sharing.kos import manifest_part10, referenced
from bridge.sharing.kos_reader import read_manifest
from bridge.sharing.study import read_study
from tests.unit.sharing.kos_cases import GATEWAY, generated, kos_json, manifest_of, read_golden
from tests.unit.sharing.sharing_helpers import CT_IMAGE, element, instance

_EVIDENCE = "0040A375"


def test_the_golden_manifest_reads_back_to_the_study_s_instances() -> None:
    golden = read_golden("kos_seed7_study1.json")
    instances = generated().to_dicom_json()
    assert kos_json(instances) == golden  # the builder still writes the golden manifest
    manifest = read_manifest(manifest_part10(golden))
    study = read_study(instances)
    assert manifest.study_uid == study.study_uid
    assert (manifest.patient_id, manifest.issuer_of_patient_id,
            manifest.universal_entity_id) == (
        study.patient_id, study.issuer, study.universal_entity_id)
    assert manifest.sop_instance_uid == golden["00080018"]["Value"][0]
    assert manifest.references() == referenced(manifest_of(instances))
    assert sorted(manifest.references()) == sorted(
        (r.series_uid, r.sop_class_uid, r.sop_instance_uid) for r in study.instances)
    assert {(s.retrieve_url, s.retrieve_location_uid) for s in manifest.series} == {
        (f"{GATEWAY}/studies/{study.study_uid}",
         golden[_EVIDENCE]["Value"][0]["00081115"]["Value"][0]["0040E011"]["Value"][0])}


def _series_item(kos: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = kos[_EVIDENCE]["Value"][0]["00081115"]["Value"][0]
    return item


@pytest.mark.parametrize(("breaks", "tag"), [
    (lambda k: k["00080016"].update(Value=["1.2.840.10008.5.1.4.1.1.88.11"]), "(0008,0016)"),
    (lambda k: k.pop(_EVIDENCE), "(0040,A375)"),
    (lambda k: k["0040A043"]["Value"][0]["00080100"].update(Value=["113001"]), "(0040,A043)"),
    (lambda k: _series_item(k).pop("00081190"), "(0008,1190)"),
    (lambda k: _series_item(k).pop("00081199"), "(0008,1199)"),
])
def test_a_malformed_manifest_is_refused_naming_the_tag(
    breaks: Callable[[dict[str, Any]], Any], tag: str
) -> None:
    kos = copy.deepcopy(read_golden("kos_seed7_study1.json"))
    breaks(kos)
    with pytest.raises(ManifestFormatError) as caught:
        read_manifest(manifest_part10(kos))
    assert caught.value.tag is not None and caught.value.tag.startswith(tag)
    assert tag in str(caught.value)


def test_bytes_that_are_not_dicom_are_refused() -> None:
    with pytest.raises(ManifestFormatError) as caught:
        read_manifest(b"<html>not a manifest</html>")
    assert caught.value.tag == "(0002,0000) FileMetaInformation"


def test_the_patient_s_issuer_and_its_universal_entity_id_read_back() -> None:
    qualifiers = element("SQ", {"00400032": element("UT", "1.2.3.999"),
                                "00400033": element("CS", "ISO")})
    instances = [instance(sop=f"1.2.3.4.1.{n}", **{"00100024": qualifiers}) for n in (1, 2)]
    manifest = read_manifest(manifest_part10(kos_json(instances)))
    assert (manifest.patient_id, manifest.issuer_of_patient_id,
            manifest.universal_entity_id) == ("MRN-1", "HOSP_A", "1.2.3.999")
    assert manifest.references() == [("1.2.3.4.1", CT_IMAGE, "1.2.3.4.1.1"),
                                     ("1.2.3.4.1", CT_IMAGE, "1.2.3.4.1.2")]
