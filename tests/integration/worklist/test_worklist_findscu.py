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
from typing import TYPE_CHECKING

import httpx
import pytest
from pydicom.dataset import Dataset

from bridge.worklist.loader import load_worklist_mapping
from bridge.worklist.mapper import map_order
from bridge.worklist.scp import WorklistScp
from bridge.worklist.source import InMemoryWorklist
from tests.integration.worklist import worklist_ehr as ehr
from tests.integration.worklist.worklist_ehr import (
    MODALITY_AE,
    SCP_AE,
    Answer,
    findscu,
)

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration


@pytest.fixture
def worklist() -> Iterator[tuple[WorklistScp, InMemoryWorklist]]:
    source = InMemoryWorklist()
    scp = WorklistScp(source=source, ae_title=SCP_AE, calling_ae_titles=[MODALITY_AE])
    scp.start()
    try:
        yield scp, source
    finally:
        scp.stop()


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
    patient = ehr.create(fhir, ehr.patient(ns, family, given))
    orders = [ehr.create(fhir, ehr.order(ns, patient["id"], n=1)),
              ehr.create(fhir, ehr.order(ns, patient["id"], n=2, when="2026-12-10T14:00:00Z")),
              ehr.create(fhir, ehr.order(ns, patient["id"], n=3, when="2026-12-09T11:00:00Z",
                                   modality="MR"))]
    items = [map_order(order, patient, mapping) for order in orders]
    stranger = copy.deepcopy(ehr.order(ns, "p-x", n=4))
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
    order = ehr.order(ns, "p-1")
    source.replace([map_order(order, {"id": "p-1", "identifier": [{"value": "P1"}]},
                              mapping)])
    refused = findscu(scp.port, ["PatientID", key], tmp_path / "bad")
    assert status in refused.output
    assert refused.responses == []
    after = findscu(scp.port, ["PatientID=P1", "AccessionNumber"], tmp_path / "good")
    assert _accessions(after) == [ns.accession(1)]
