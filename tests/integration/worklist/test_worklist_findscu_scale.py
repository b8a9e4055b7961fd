"""PS3.4 K.6 matching through DCMTK's ``findscu -W`` on a worklist of 1,000 items (issue
17, "Proof"): each query returns exactly the items a plain Python predicate over the
orders' own parameters selects, so the matcher is checked against an independent rule,
not against itself."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from bridge.worklist.loader import load_worklist_mapping
from bridge.worklist.mapper import map_order
from bridge.worklist.scp import WorklistScp
from bridge.worklist.source import InMemoryWorklist

pytestmark = pytest.mark.integration

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
FAMILIES = ("Hansen", "Hanson", "Jensen", "Müller", "山田")
COUNT = 1000


@dataclass(frozen=True)
class Order:
    n: int
    family: str
    modality: str  # CT, MR (performerType) or CR (locationCode)
    start: dt.datetime

    @property
    def accession(self) -> str:
        return f"A{self.n:05d}"

    def resources(self) -> tuple[dict[str, object], dict[str, object]]:
        station: dict[str, object] = (
            {"locationCode": [{"coding": [{"system": ROLE, "code": "RADDX"}]}]}
            if self.modality == "CR"
            else {"performerType": {"coding": [{"system": DCM, "code": self.modality}]}})
        order = {
            "resourceType": "ServiceRequest", "id": f"sr-{self.n}", "status": "active",
            "intent": "order", "subject": {"reference": f"Patient/p-{self.n}"},
            "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                            "value": self.accession}],
            "code": {"text": "Imaging"}, "occurrenceDateTime": self.start.isoformat() + "Z",
            **station,
        }
        patient = {"resourceType": "Patient", "id": f"p-{self.n}",
                   "identifier": [{"value": f"MRN{self.n:05d}"}],
                   "name": [{"family": self.family, "given": ["Kim"]}]}
        return order, patient


ORDERS = [Order(n, FAMILIES[n % 5], ("CT", "MR", "CR")[n % 3],
                dt.datetime(2026, 12, 1 + n % 20, 8) + dt.timedelta(minutes=(n * 7) % 600))
          for n in range(COUNT)]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    mapping = load_worklist_mapping()
    items = [map_order(*order.resources(), mapping) for order in ORDERS]
    scp = WorklistScp(source=InMemoryWorklist(items), ae_title="BRIDGE_MWL",
                      calling_ae_titles=["FINDSCU"])
    scp.start()
    try:
        yield scp.port
    finally:
        scp.stop()


def _found(port: int, keys: list[str], out: Path) -> list[str]:
    args = ["findscu", "-W", "-aet", "FINDSCU", "-aec", "BRIDGE_MWL", "127.0.0.1", str(port),
            "-X", "-od", str(out), "-k", "AccessionNumber"]
    for key in keys:
        args += ["-k", key]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted(str(pydicom.dcmread(p).AccessionNumber) for p in out.glob("rsp*.dcm"))


SPS = "(0040,0100)[0]."
DEC = dt.datetime(2026, 12, 1)

QUERIES: dict[str, tuple[list[str], Callable[[Order], bool]]] = {
    "modality and date range": (
        [f"{SPS}Modality=MR", f"{SPS}ScheduledProcedureStepStartDate=20261205-20261210"],
        lambda o: o.modality == "MR" and 5 <= o.start.day <= 10),
    "name wildcard": (["PatientName=hans?n*"], lambda o: o.family in ("Hansen", "Hanson")),
    "non-Latin name": (["SpecificCharacterSet=ISO_IR 192", "PatientName=山*"],
                       lambda o: o.family == "山田"),
    "one day, time range": (
        [f"{SPS}ScheduledProcedureStepStartDate=20261203",
         f"{SPS}ScheduledProcedureStepStartTime=0900-1030"],
        lambda o: o.start.day == 3 and dt.time(9) <= o.start.time() <= dt.time(10, 30, 59)),
    "station and date-time range": (
        [f"{SPS}ScheduledStationAETitle=CT_SCANNER_1",
         f"{SPS}ScheduledProcedureStepStartDate=20261210-20261212",
         f"{SPS}ScheduledProcedureStepStartTime=1200-0800"],
        lambda o: o.modality == "CT"
        and DEC.replace(day=10, hour=12) <= o.start <= DEC.replace(day=12, hour=8, second=59)),
    "open-ended date": ([f"{SPS}ScheduledProcedureStepStartDate=-20261202",
                         f"{SPS}Modality=C?"],
                        lambda o: o.start.day <= 2 and o.modality in ("CT", "CR")),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_findscu_gets_exactly_the_matching_items_of_1000(port: int, tmp_path: Path,
                                                         name: str) -> None:
    keys, wanted = QUERIES[name]
    expected = sorted(o.accession for o in ORDERS if wanted(o))
    assert expected, "the query must select something to prove anything"
    assert len(expected) < COUNT
    assert _found(port, keys, tmp_path) == expected
