"""Orders in the real HAPI and DCMTK's findscu, shared by the worklist's integration tests:
a Patient and an imaging ServiceRequest with a test's unique identifiers, created and read
back; ``findscu -W`` run against an SCP, each Pending response read from its file."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pydicom
from pydicom.dataset import Dataset

from bridge.sections.worklist import WorklistSettings

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCP_AE = "BRIDGE_MWL"
MODALITY_AE = "FINDSCU_CT1"


def identifier(code: str, system: str, value: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": V2_0203, "code": code}]}, "system": system,
            "value": value}


def patient(ns: Namespace, family: str, given: str) -> dict[str, Any]:
    return {"resourceType": "Patient",
            "identifier": [identifier("MR", "urn:oid:1.2.3.4.9", ns.patient_id())],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "birthDate": "1961-02-03", "gender": "male"}


def order(ns: Namespace, patient_id: str, *, n: int = 1, when: str = "2026-12-09T09:30:00Z",
           modality: str = "CT", category: tuple[str, str] = ("http://snomed.info/sct",
                                                              "363679005")
           ) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "category": [{"coding": [{"system": category[0], "code": category[1]}]}],
        "identifier": [identifier("PLAC", "urn:oid:1.2.3.4.1", ns.name("PL", n)),
                       identifier("ACSN", "urn:oid:1.2.3.4.3", ns.accession(n))],
        "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2",
                             "display": "CT Chest"}], "text": "CT chest"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": when,
        "requester": {"display": "Jane Smith"},
        "performerType": {"coding": [{"system": DCM, "code": modality}]},
    }


def create(client: httpx.Client, resource: dict[str, Any]) -> dict[str, Any]:
    created = client.post(f"/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    created.raise_for_status()
    # read back what the server stores: the mapper sees the EHR's resource, not ours
    read = client.get(f"/{resource['resourceType']}/{created.json()['id']}",
                      headers=FHIR_JSON)
    read.raise_for_status()
    body: dict[str, Any] = read.json()
    return body


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


CATEGORY_SYSTEM = "urn:test:imaging-bridge:worklist"


def tomorrow(hour: int = 9) -> str:
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return f"{day.isoformat()}T{hour:02d}:30:00Z"


def worklist_settings(ns: Namespace, *, interval: float = 10.0) -> WorklistSettings:
    return WorklistSettings(enabled=True, ae_title=SCP_AE, calling_ae_titles=[MODALITY_AE],
                            port=0, order_category=f"{CATEGORY_SYSTEM}|{ns.token}",
                            poll_interval=interval)


def my_order(ns: Namespace, patient_id: str, n: int, **kw: Any) -> dict[str, Any]:
    return order(ns, patient_id, n=n, when=tomorrow(8 + n),
                     category=(CATEGORY_SYSTEM, ns.token), **kw)
