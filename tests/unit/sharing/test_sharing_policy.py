"""mappings/sharing.yaml: the default file loads, bad files name file, line and field;
the sharing decision follows the policy; the patient is found in the affinity domain only
through the issuer map."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import MappingConfigError, Permanent
from bridge.sharing.decide import decide
from bridge.sharing.errors import IdentityUnmapped, SharingConfigError
from bridge.sharing.identity import affinity_identifier
from bridge.sharing.loader import load_sharing_policy
from bridge.sharing.study import read_study
from tests.unit.sharing.sharing_helpers import element, instance, policy


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sharing.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """\
source:
  source_id: urn:oid:1.2.3
  retrieve_location_uid: 1.2.3.4
"""


def test_default_file_shares_every_study_with_the_xds_i_type_code() -> None:
    loaded = load_sharing_policy()
    assert loaded.policy.mode == "all"
    assert loaded.policy.exclude_modalities == []
    assert (loaded.document.type.system, loaded.document.type.code) == (
        "http://loinc.org", "18748-4")
    assert loaded.affinity_domain.issuers["HOSP_A"].system.startswith("https://")


def test_a_minimal_file_needs_only_the_source(tmp_path: Path) -> None:
    loaded = load_sharing_policy(write(tmp_path, MINIMAL))
    assert loaded.source.retrieve_location_uid == "1.2.3.4"
    assert loaded.document.class_.code == "18726-0"


def test_a_bad_system_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "document:\n  type:\n    system: htp:/loinc\n    code: x\n")
    with pytest.raises(SharingConfigError) as caught:
        load_sharing_policy(path)
    assert caught.value.fields == ("document.type.system",)
    assert f"{path}:6 document.type.system: not a URI" in caught.value.message
    assert isinstance(caught.value, MappingConfigError)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """\
policy:
  mode: sometimes
  exclude_modalities: [mg]
  colour: blue
source:
  source_id: https://not-an-oid.example.org
  retrieve_location_uid: 1.02.3
""")
    with pytest.raises(SharingConfigError) as caught:
        load_sharing_policy(path)
    assert set(caught.value.fields) == {
        "policy.mode", "policy.exclude_modalities[0]", "policy.colour",
        "source.source_id", "source.retrieve_location_uid",
    }
    assert "policy.colour: unknown key" in caught.value.message


def test_the_source_is_required(tmp_path: Path) -> None:
    with pytest.raises(SharingConfigError) as caught:
        load_sharing_policy(write(tmp_path, "version: 1\n"))
    assert caught.value.fields == ("source",)
    assert "source: required key is missing" in caught.value.message


def test_invalid_yaml_is_a_sharing_config_error(tmp_path: Path) -> None:
    with pytest.raises(SharingConfigError, match="not valid YAML"):
        load_sharing_policy(write(tmp_path, "source: [unclosed\n"))


def test_by_default_every_study_is_shared() -> None:
    study = read_study([instance()])
    assert decide(policy().policy, study).share


def test_a_study_with_an_excluded_modality_is_not_shared_even_on_request() -> None:
    study = read_study([instance(), instance(series="1.2.3.4.2", sop="1.2.3.4.2.1",
                                             modality="MG")])
    outcome = decide(policy(policy={"exclude_modalities": ["MG"]}).policy, study,
                     requested=True)
    assert (outcome.share, outcome.reason) == (False, "excluded-modality:MG")


def test_a_study_with_an_excluded_confidentiality_code_is_not_shared() -> None:
    study = read_study([instance(**{"00401008": element("LO", "R")})])
    outcome = decide(policy(policy={"exclude_confidentiality_codes": ["R", "V"]}).policy,
                     study)
    assert (outcome.share, outcome.reason) == (False, "excluded-confidentiality:R")


def test_on_demand_shares_only_requested_studies() -> None:
    on_demand = policy(policy={"mode": "on-demand"}).policy
    study = read_study([instance()])
    assert decide(on_demand, study).reason == "on-demand-not-requested"
    assert decide(on_demand, study, requested=True).share


def test_the_affinity_identifier_comes_from_the_issuer_map() -> None:
    study = read_study([instance(patient_id="MRN-7", issuer="HOSP_B")])
    assert affinity_identifier(policy().affinity_domain, study) == {
        "system": "https://health-network.example.org/fhir/sid/hospital-b-mrn",
        "value": "MRN-7",
    }


def test_the_universal_entity_id_is_a_key_of_the_issuer_map() -> None:
    qualifiers = element("SQ", {"00400032": element("UT", "1.2.840.99"),
                                "00400033": element("CS", "ISO")})
    study = read_study([instance(issuer=None, **{"00100024": qualifiers})])
    domain = policy(affinity_domain={"issuers": {"1.2.840.99": {"system": "urn:oid:1.9"}}})
    assert affinity_identifier(domain.affinity_domain, study)["system"] == "urn:oid:1.9"


@pytest.mark.parametrize(("issuer", "patient_id", "tag"), [
    ("HOSP_Z", "MRN-1", "(0010,0021) IssuerOfPatientID"),
    (None, "MRN-1", "(0010,0021) IssuerOfPatientID"),
    ("HOSP_A", None, "(0010,0020) PatientID"),
])
def test_an_unmapped_patient_is_never_guessed(
    issuer: str | None, patient_id: str | None, tag: str
) -> None:
    study = read_study([instance(issuer=issuer, patient_id=patient_id)])
    with pytest.raises(IdentityUnmapped) as caught:
        affinity_identifier(policy().affinity_domain, study)
    assert caught.value.tag == tag
    assert isinstance(caught.value, Permanent)
    assert "MRN" not in caught.value.message
