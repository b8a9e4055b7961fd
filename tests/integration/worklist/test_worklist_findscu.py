"""The Modality Worklist SCP answers DCMTK's ``findscu -W`` (an independent client) with
items mapped from real orders in HAPI FHIR (PS3.4 K.6; issue 17, "Proof").

Each test creates its own Patient and ServiceRequest with unique identifiers (``ns``) in
the shared HAPI, reads them back, maps them with mappings/worklist.yaml and serves them
beside a few handmade orders on a loopback port of its own.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset

from bridge.worklist.loader import load_worklist_mapping
from bridge.worklist.mapper import map_order
from bridge.worklist.scp import WorklistScp
from bridge.worklist.source import InMemoryWorklist

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCP_AE = "BRIDGE_MWL"
MODALITY_AE = "FINDSCU_CT1"


def _identifier(code: str, system: str, value: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": V2_0203, "code": code}]}, "system": system,
            "value": value}


def _patient(ns: Namespace, family: str, given: str) -> dict[str, Any]:
    return {"resourceType": "Patient",
            "identifier": [_identifier("MR", "urn:oid:1.2.3.4.9", ns.patient_id())],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "birthDate": "1961-02-03", "gender": "male"}


def _order(ns: Namespace, patient_id: str, *, n: int = 1, when: str = "2026-12-09T09:30:00Z",
           modality: str = "CT") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005"}]}],
        "identifier": [_identifier("PLAC", "urn:oid:1.2.3.4.1", ns.name("PL", n)),
                       _identifier("ACSN", "urn:oid:1.2.3.4.3", ns.accession(n))],
        "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2",
                             "display": "CT Chest"}], "text": "CT chest"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": when,
        "requester": {"display": "Jane Smith"},
        "performerType": {"coding": [{"system": DCM, "code": modality}]},
    }


def _create(client: httpx.Client, resource: dict[str, Any]) -> dict[str, Any]:
    created = client.post(f"/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    created.raise_for_status()
    # read back what the server stores: the mapper sees the EHR's resource, not ours
    read = client.get(f"/{resource['resourceType']}/{created.json()['id']}",
                      headers=FHIR_JSON)
    read.raise_for_status()
    body: dict[str, Any] = read.json()
    return body


@pytest.fixture
def fhir(hapi: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hapi.fhir_url, timeout=30) as client:
        yield client


@pytest.fixture
def worklist() -> Iterator[tuple[WorklistScp, InMemoryWorklist]]:
    source = InMemoryWorklist()
    scp = WorklistScp(source=source, ae_title=SCP_AE, calling_ae_titles=[MODALITY_AE])
    scp.start()
    try:
        yield scp, source
    finally:
        scp.stop()


class Answer:
    def __init__(self, returncode: int, output: str, responses: list[Dataset]) -> None:
        self.returncode = returncode
        self.output = output
        self.responses = responses


def findscu(port: int, keys: list[str], out: Path, *, calling: str = MODALITY_AE) -> Answer:
    """Run DCMTK's findscu against the SCP; each Pending response is read from its file."""
    out.mkdir(parents=True, exist_ok=True)
    args = ["findscu", "-W", "-v", "-aet", calling, "-aec", SCP_AE, "127.0.0.1", str(port),
            "-X", "-od", str(out)]
    for key in keys:
        args += ["-k", key]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    responses = [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]
    return Answer(done.returncode, done.stdout + done.stderr, responses)


RETURN_KEYS = ["PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
               "PatientSex", "AccessionNumber", "StudyInstanceUID", "RequestedProcedureID",
               "(0040,0100)[0].ScheduledStationAETitle", "(0040,0100)[0].Modality",
               "(0040,0100)[0].ScheduledProcedureStepStartDate",
               "(0040,0100)[0].ScheduledProcedureStepStartTime",
               "(0040,0100)[0].ScheduledProcedureStepID"]


def _serve_orders(fhir: httpx.Client, ns: Namespace, source: InMemoryWorklist,
                  family: str = "Hansen", given: str = "Ole") -> list[Dataset]:
    """Create one Patient with three orders in HAPI (CT Dec 9 09:30, CT Dec 10 14:00,
    MR Dec 9 11:00) and put their items on the worklist, beside another site's order."""
    mapping = load_worklist_mapping()
    patient = _create(fhir, _patient(ns, family, given))
    orders = [_create(fhir, _order(ns, patient["id"], n=1)),
              _create(fhir, _order(ns, patient["id"], n=2, when="2026-12-10T14:00:00Z")),
              _create(fhir, _order(ns, patient["id"], n=3, when="2026-12-09T11:00:00Z",
                                   modality="MR"))]
    items = [map_order(order, patient, mapping) for order in orders]
    stranger = copy.deepcopy(_order(ns, "p-x", n=4))
    other = map_order(stranger, {"id": "p-x", "identifier": [{"value": "OTHER-1"}],
                                 "name": [{"family": "Other"}]}, mapping)
    source.replace([*items, other])
    return items


def _accessions(answer: Answer) -> list[str]:
    assert answer.returncode == 0, answer.output
    return sorted(str(r.AccessionNumber) for r in answer.responses)


def test_an_order_created_in_hapi_is_on_the_worklist_with_its_identifiers(
    fhir: httpx.Client, ns: Namespace, worklist: tuple[WorklistScp, InMemoryWorklist],
    tmp_path: Path,
) -> None:
    scp, source = worklist
    items = _serve_orders(fhir, ns, source)
    answer = findscu(scp.port, [*RETURN_KEYS, f"AccessionNumber={ns.accession(1)}"], tmp_path)
    assert answer.returncode == 0, answer.output
    [found] = answer.responses
    assert str(found.PatientName) == "Hansen^Ole"
    assert found.PatientID == ns.patient_id()
    assert found.PatientBirthDate == "19610203"
    assert found.PatientSex == "M"
    assert found.RequestedProcedureID == ns.accession(1)
    assert found.StudyInstanceUID == items[0].StudyInstanceUID
    [step] = found.ScheduledProcedureStepSequence
    assert (step.ScheduledStationAETitle, step.Modality) == ("CT_SCANNER_1", "CT")
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) \
        == ("20261209", "093000")
    assert step.ScheduledProcedureStepID == ns.accession(1)


def test_wildcard_range_and_sequence_queries(
    fhir: httpx.Client, ns: Namespace, worklist: tuple[WorklistScp, InMemoryWorklist],
    tmp_path: Path,
) -> None:
    scp, source = worklist
    _serve_orders(fhir, ns, source)
    mine = [f"PatientID={ns.patient_id()}", "AccessionNumber"]
    acc = [ns.accession(n) for n in (1, 2, 3)]
    by_wildcard = findscu(scp.port, [f"PatientID=*{ns.token}*", "AccessionNumber",
                                     "PatientName=hans?N*"], tmp_path / "w")
    assert _accessions(by_wildcard) == acc
    by_date = findscu(scp.port, [*mine, "(0040,0100)[0].ScheduledProcedureStepStartDate="
                                 "20261210-"], tmp_path / "d")
    assert _accessions(by_date) == [acc[1]]
    by_date_time = findscu(scp.port, [
        *mine, "(0040,0100)[0].ScheduledProcedureStepStartDate=20261209",
        "(0040,0100)[0].ScheduledProcedureStepStartTime=1000-1200"], tmp_path / "t")
    assert _accessions(by_date_time) == [acc[2]]
    by_station = findscu(scp.port, [*mine, "(0040,0100)[0].Modality=CT",
                                    "(0040,0100)[0].ScheduledStationAETitle=CT_SCANNER_1"],
                         tmp_path / "s")
    assert _accessions(by_station) == acc[:2]
    universal = findscu(scp.port, [*mine, "(0040,0100)[0].Modality"], tmp_path / "u")
    assert _accessions(universal) == acc


def test_a_non_latin_name_round_trips_in_utf8(
    fhir: httpx.Client, ns: Namespace, worklist: tuple[WorklistScp, InMemoryWorklist],
    tmp_path: Path,
) -> None:
    scp, source = worklist
    _serve_orders(fhir, ns, source, family="山田", given="太郎")
    answer = findscu(scp.port, ["SpecificCharacterSet=ISO_IR 192", "PatientName=山田*",
                                f"PatientID={ns.patient_id()}", "AccessionNumber"], tmp_path)
    assert _accessions(answer) == [ns.accession(n) for n in (1, 2, 3)]
    assert {r.SpecificCharacterSet for r in answer.responses} == {"ISO_IR 192"}
    assert {str(r.PatientName) for r in answer.responses} == {"山田^太郎"}


def test_an_unknown_calling_ae_is_rejected(
    worklist: tuple[WorklistScp, InMemoryWorklist], tmp_path: Path,
) -> None:
    scp, _ = worklist
    answer = findscu(scp.port, ["PatientID"], tmp_path, calling="INTRUDER")
    assert answer.returncode != 0
    assert "Association Rejected" in answer.output
    assert answer.responses == []


def test_the_worklist_answers_echoscu_from_an_allowed_ae(
    worklist: tuple[WorklistScp, InMemoryWorklist],
) -> None:
    scp, _ = worklist
    echo = subprocess.run(["echoscu", "-aet", MODALITY_AE, "-aec", SCP_AE, "127.0.0.1",
                           str(scp.port)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert echo.returncode == 0, echo.stdout + echo.stderr


@pytest.mark.parametrize(("key", "status"), [
    ("PatientBirthDate=1961-02-03", "Failed: UnableToProcess"),
    ("(0040,0100)[0].ScheduledProcedureStepStartTime=25:00", "Failed: UnableToProcess"),
    ("SeriesInstanceUID", "Error: DataSetDoesNotMatchSOPClass"),
])
def test_malformed_or_unsupported_queries_get_a_failure_status_and_the_scp_keeps_serving(
    ns: Namespace, worklist: tuple[WorklistScp, InMemoryWorklist], tmp_path: Path,
    key: str, status: str,
) -> None:
    scp, source = worklist
    mapping = load_worklist_mapping()
    order = _order(ns, "p-1")
    source.replace([map_order(order, {"id": "p-1", "identifier": [{"value": "P1"}]},
                              mapping)])
    refused = findscu(scp.port, ["PatientID", key], tmp_path / "bad")
    assert status in refused.output
    assert refused.responses == []
    after = findscu(scp.port, ["PatientID=P1", "AccessionNumber"], tmp_path / "good")
    assert _accessions(after) == [ns.accession(1)]
