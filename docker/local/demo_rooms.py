"""The demo's part of the four rooms (docker/local/demo.py calls these; README command 1).

* migration (issue 15): a legacy PACS, DCMTK ``dcmqrscp``, loaded over C-STORE with a few
  more studies of the same demo patients (new UIDs), and the ``migration.sources`` entry
  that reaches it;
* worklist (issue 17): today's scheduled orders in the EHR (a station in performerType,
  an occurrence inside the scheduling window, the imaging category the poller asks for),
  the orders of the studies already performed marked ``completed``, and a worklist mapping
  that names the demo patients' identifier issuers (so a modality's images find their
  Patient and their order);
* record (issue 16): a dose SR and a report SR for some demo studies, stored in Orthanc
  beside their images;
* sharing (issue 14): the registry is the demo's own HAPI (no second server: HAPI's
  partitions are off in our launcher); each demo Patient gets its affinity-domain
  identifier, as a health network's identity feed would add it, so the registry Patient is
  the EHR Patient and no demographics-less Patient shows in the EHR's patient picker.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import yaml
from devservers.dcmqrscp import Dcmqrscp, store_files

from samples.catalogue import ACCESSION_SYSTEMS, PATIENT_ID_SYSTEMS
from samples.generator import GeneratedStudy, StudyTruth, generate_studies
from samples.modality import Modality
from samples.rdsr import dose_sr
from samples.report_sr import text_report_sr
from samples.seed_ehr import SeedResult, patient_resource, service_request_resource
from samples.sr_content import part10

ROOT = Path(__file__).resolve().parents[2]
LEGACY_SOURCE = "legacy-pacs"
LEGACY_AE = "LEGACY-PACS"
#: the worklist SCP's AE title, and the calling AE titles it answers: the simulator's
#: modality and a findscu on the command line
MWL_AE = "BRIDGE_MWL"
MODALITY_AE = "CT_SCANNER_1"
FINDSCU_AE = "DEMO_FINDSCU"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SNOMED = "http://snomed.info/sct"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
#: the orders put on the worklist: (modality, hours from now, procedure)
SCHEDULE = (("CT", 1, ("24627-2", "CT Chest")), ("MR", 2, ("24590-2", "MR Brain")),
            ("CT", 26, ("24627-2", "CT Chest")))
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
#: the code of a study's dose summary Observation (LOINC 73569-6 Radiation exposure and
#: protection information; docs/record.md)
DOSE_SUMMARY = "http://loinc.org|73569-6"


# --- migration -------------------------------------------------------------------------


def legacy_studies(count: int, legacy: int, *, seed: int) -> list[GeneratedStudy]:
    """``legacy`` studies of the same patients as the demo's ``count`` (the same seed and
    patient pool; the indexes after the demo's give new UIDs and accessions)."""
    pool = max(1, count // 4)  # generate_studies' default pool for ``count``
    more = generate_studies(count + legacy, seed=seed, patients=pool, profile="small")
    return list(islice(more, count, None))


def start_legacy(studies: Sequence[GeneratedStudy], folder: Path) -> Dcmqrscp:
    """dcmqrscp on a free port, loaded with ``studies`` by storescu; the caller stops it."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.dcm"):
        old.unlink()
    paths = []
    for study in studies:
        for number, data in enumerate(study.part10()):
            path = folder / f"{study.truth.index}-{number}.dcm"
            path.write_bytes(data)
            paths.append(path)
    server = Dcmqrscp(ae_title=LEGACY_AE).start()
    try:
        store_files(paths, host=server.host, port=server.port, called_ae=server.ae_title)
    except BaseException:
        server.stop()
        raise
    return server


def migration_settings(legacy: Dcmqrscp, spool: Path) -> dict[str, Any]:
    return {"sources": [{"name": LEGACY_SOURCE, "ae_title": legacy.ae_title,
                         "host": legacy.host, "port": legacy.port,
                         "calling_ae_title": "IMAGING-BRIDGE", "transfer": "c-get"}],
            "spool_dir": str(spool), "workers": 2}


# --- worklist --------------------------------------------------------------------------


def wait_for_worklist(port: int, accession: str, *, deadline: float) -> None:
    """Until the worklist SCP serves ``accession`` (serve's first order poll), by C-FIND."""
    finder = Modality(ae_title=FINDSCU_AE, host="127.0.0.1", port=port, scp_ae=MWL_AE)
    while True:
        try:
            if finder.worklist(AccessionNumber=accession):
                return
        except ConnectionError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: the worklist did not serve {accession} in time")
        time.sleep(0.3)


def write_worklist_mapping(path: Path) -> Path:
    """mappings/worklist.yaml with the demo patients' MRN systems as IssuerOfPatientID
    (HOSP_A, HOSP_B, the issuers the default FHIR mapping knows) and RIS_A as the
    accession's issuer: the images a modality makes from an item then reach the sync with
    identifiers it maps to the order's Patient and accession."""
    mapping = yaml.safe_load((ROOT / "mappings" / "worklist.yaml").read_text())
    mapping["patient"]["issuers"] = {system: issuer
                                     for issuer, system in PATIENT_ID_SYSTEMS.items()}
    mapping["accession_issuer"] = "RIS_A"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


def worklist_settings(port: int, mapping: Path) -> dict[str, Any]:
    return {"enabled": True, "ae_title": MWL_AE, "host": "127.0.0.1", "port": port,
            "calling_ae_titles": [MODALITY_AE, FINDSCU_AE], "mapping_file": str(mapping),
            "poll_interval": 5}


def _batch(fhir_url: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resp = httpx.post(fhir_url, json={"resourceType": "Bundle", "type": "batch",
                                      "entry": entries}, headers=FHIR_JSON, timeout=120)
    resp.raise_for_status()
    answers: list[dict[str, Any]] = resp.json().get("entry", [])
    bad = [a["response"]["status"] for a in answers
           if not str(a.get("response", {}).get("status", "")).startswith("2")]
    if bad:
        raise RuntimeError(f"the EHR refused {len(bad)} of {len(entries)} entries: {bad[:3]}")
    return answers


def complete_past_orders(fhir_url: str, truths: Iterable[StudyTruth],
                         seeded: SeedResult) -> int:
    """The seeded orders are those of studies already performed: ``completed`` (the
    worklist serves ``active`` orders only, and these have no station nor schedule)."""
    entries = []
    for truth in truths:
        order = seeded.service_request_ids.get(truth.study_uid)
        patient = seeded.patient_ids.get((truth.patient_issuer, truth.patient_id))
        if order is None or patient is None:
            continue
        resource = service_request_resource(truth, patient) | {"id": order,
                                                               "status": "completed"}
        entries.append({"resource": resource,
                        "request": {"method": "PUT", "url": f"ServiceRequest/{order}"}})
    if entries:
        _batch(fhir_url, entries)
    return len(entries)


def schedule_orders(fhir_url: str, truths: Sequence[StudyTruth],
                    seeded: SeedResult) -> list[str]:
    """Active imaging orders for the next hours (:data:`SCHEDULE`), one per demo patient
    in turn; their accession numbers."""
    patients: list[tuple[tuple[str, str], str]] = []
    for truth in truths:
        key = (truth.patient_issuer, truth.patient_id)
        if key in seeded.patient_ids and key not in [k for k, _ in patients]:
            patients.append((key, seeded.patient_ids[key]))
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    entries, accessions = [], []
    for n, (modality, hours, (code, display)) in enumerate(SCHEDULE, start=1):
        (_, _), patient = patients[(n - 1) % len(patients)]
        accession = f"WL{now:%m%d}{n:03d}"
        accessions.append(accession)
        when = (now + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
        entries.append({"request": {"method": "POST", "url": "ServiceRequest"}, "resource": {
            "resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "category": [{"coding": [{"system": SNOMED, "code": "363679005",
                                      "display": "Imaging"}]}],
            "identifier": [
                {"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                 "system": ACCESSION_SYSTEMS["RIS_A"], "value": accession},
                {"type": {"coding": [{"system": V2_0203, "code": "PLAC"}]},
                 "system": "https://hospital-a.example.org/fhir/sid/placer-order",
                 "value": f"DEMO-{accession}"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code,
                                 "display": display}], "text": display},
            "subject": {"reference": f"Patient/{patient}"},
            "occurrenceDateTime": when,
            "requester": {"display": "Jane Smith"},
            "performerType": {"coding": [{"system": DCM, "code": modality}]}}})
    _batch(fhir_url, entries)
    return accessions


# --- record ----------------------------------------------------------------------------


def record_instances(studies: Iterable[GeneratedStudy], *, count: int, seed: int
                     ) -> tuple[list[GeneratedStudy], list[bytes]]:
    """A dose SR (CT: TID 10011, radiography: TID 10001) and a Basic Text SR report for
    each of the first ``count`` studies that had radiation; the studies and the files."""
    chosen: list[GeneratedStudy] = []
    files: list[bytes] = []
    if count <= 0:
        return chosen, files
    for study in studies:
        made = dose_sr(study.truth, seed=seed)
        if made is None:
            continue
        report, _ = text_report_sr(study.truth, seed=seed)
        chosen.append(study)
        files += [part10(made[0]), part10(report)]
        if len(chosen) == count:
            break
    return chosen, files


def store_in_orthanc(base_url: str, auth: tuple[str, str], files: Iterable[bytes]) -> int:
    """Each Part-10 file by Orthanc's REST ``POST /instances``; how many."""
    n = 0
    with httpx.Client(auth=auth, timeout=60) as client:
        for data in files:
            client.post(f"{base_url}/instances", content=data).raise_for_status()
            n += 1
    return n


# --- sharing ---------------------------------------------------------------------------


def affinity_systems() -> dict[str, str]:
    """IssuerOfPatientID -> the affinity domain's identifier system (mappings/sharing.yaml)."""
    policy = yaml.safe_load((ROOT / "mappings" / "sharing.yaml").read_text())
    return {issuer: str(entry["system"])
            for issuer, entry in policy["affinity_domain"]["issuers"].items()}


def join_affinity_domain(fhir_url: str, truths: Iterable[StudyTruth],
                         seeded: SeedResult) -> int:
    """Each seeded Patient gets its affinity-domain identifier (the registry Patient the
    publisher looks for, and what site B's look-up searches by)."""
    systems = affinity_systems()
    firsts: dict[tuple[str, str], StudyTruth] = {}
    for truth in truths:
        firsts.setdefault((truth.patient_issuer, truth.patient_id), truth)
    entries = []
    for key, patient in sorted(seeded.patient_ids.items()):
        first = firsts.get(key)
        if first is None or key[0] not in systems:
            continue
        resource = patient_resource(first) | {"id": patient}
        resource["identifier"] = [*resource["identifier"],
                                  {"system": systems[key[0]], "value": key[1]}]
        entries.append({"resource": resource,
                        "request": {"method": "PUT", "url": f"Patient/{patient}"}})
    if entries:
        _batch(fhir_url, entries)
    return len(entries)
