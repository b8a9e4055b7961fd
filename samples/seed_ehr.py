"""Create the EHR side of generated studies in a FHIR R4 server: Patients and ServiceRequests.

* Patients: one per distinct (IssuerOfPatientID, PatientID) of the studies, created with a
  conditional create (``ifNoneExist: identifier=<system>|<value>``, the batch-entry form of
  the ``If-None-Exist`` header; FHIR R4 http.html#ccreate), so re-running is harmless.
  ``patients_fraction`` seeds only a deterministic share of them: studies of the other
  patients then have no Patient in the EHR (what the bridge must handle).
* ServiceRequests: one per study whose patient was seeded, identified by the accession number
  (type ACSN), placer (PLAC) and filler (FILL) order numbers, ``status=active``,
  ``intent=order``, ``subject=Patient/<id>`` and ``code`` = the study's procedure codes.
  Also conditional on the accession identifier.

Resources go in FHIR ``batch`` Bundles of up to ``batch_size`` (100) entries.

Example::

    python -m samples.seed_ehr --fhir http://127.0.0.1:8080/fhir --count 200 --seed 7
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from samples.generator import (
    FILLER_ORDER_SYSTEM,
    LOCAL_PROCEDURE_SYSTEM,
    PLACER_ORDER_SYSTEM,
    PROFILES,
    CodeTruth,
    StudyTruth,
    generate_studies,
    read_manifest,
)

__all__ = [
    "SeedResult",
    "human_names",
    "main",
    "patient_resource",
    "seed_ehr",
    "select_patients",
    "service_request_resource",
]

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
#: DICOM coding scheme designator -> FHIR system (PS3.16 section 8; local scheme per site)
CODING_SYSTEMS = {"LN": LOINC, "SCT": SNOMED, "99HOSPA": LOCAL_PROCEDURE_SYSTEM}
#: HumanName representation extension (ideographic / syllabic PN component groups)
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
_GENDER = {"M": "male", "F": "female", "O": "other"}

PatientKey = tuple[str, str]  # (issuer, patient id)


@dataclass
class SeedResult:
    """Outcome of a seeding run."""

    patients_total: int = 0
    patients_selected: int = 0
    patients_created: int = 0
    patients_existing: int = 0
    service_requests_created: int = 0
    service_requests_existing: int = 0
    #: studies without a ServiceRequest (patient not seeded, or left out by orders_fraction)
    studies_without_order: int = 0
    requests: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: (issuer, patient id) -> FHIR logical id of the Patient
    patient_ids: dict[PatientKey, str] = field(default_factory=dict)
    #: StudyInstanceUID -> FHIR logical id of its ServiceRequest
    service_request_ids: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every batch entry succeeded."""
        return not self.errors

    def summary(self) -> str:
        """One human-readable line."""
        return (
            f"patients: {self.patients_selected}/{self.patients_total} seeded "
            f"({self.patients_created} created, {self.patients_existing} existing); "
            f"service requests: {self.service_requests_created} created, "
            f"{self.service_requests_existing} existing, "
            f"{self.studies_without_order} studies without order; "
            f"{self.requests} batch requests in {self.seconds:.1f} s; {len(self.errors)} errors"
        )


# --- resources ------------------------------------------------------------------------------


def human_names(pn: str) -> list[dict[str, Any]]:
    """FHIR HumanNames for a DICOM PN value (PS3.5 section 6.2.1).

    The alphabetic group becomes the official name; ideographic and phonetic groups become
    further names marked with the ``iso21090-EN-representation`` extension (IDE / SYL).
    """
    names: list[dict[str, Any]] = []
    for index, group in enumerate(pn.split("=")[:3]):
        if not group.strip():
            continue
        parts = (group.split("^") + [""] * 5)[:5]
        family, given, middle, prefix, suffix = (p.strip() for p in parts)
        name: dict[str, Any] = {"use": "official"}
        if index > 0:
            name["extension"] = [
                {"url": EN_REPRESENTATION, "valueCode": "IDE" if index == 1 else "SYL"}
            ]
        givens = [g for g in (given, middle) if g]
        if index == 0:
            name["text"] = " ".join(p for p in (prefix, *givens, family, suffix) if p)
        else:  # CJK order, no spaces
            name["text"] = "".join(p for p in (family, *givens) if p)
        if family:
            name["family"] = family
        if givens:
            name["given"] = givens
        if prefix:
            name["prefix"] = [prefix]
        if suffix:
            name["suffix"] = [suffix]
        names.append(name)
    return names


def _date(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:8]}"


def _typed_identifier(code: str, display: str, system: str, value: str) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": V2_0203, "code": code, "display": display}]},
        "system": system,
        "value": value,
    }


def patient_resource(truth: StudyTruth) -> dict[str, Any]:
    """The Patient resource for the study's patient."""
    identifier = _typed_identifier("MR", "Medical record number", truth.patient_system,
                                   truth.patient_id)
    identifier["use"] = "usual"
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [identifier],
        "name": human_names(truth.patient_name),
        "gender": _GENDER.get(truth.patient_sex, "unknown"),
    }
    if truth.patient_birth_date:
        resource["birthDate"] = _date(truth.patient_birth_date)
    return resource


def _concept(codes: Iterable[CodeTruth], text: str | None) -> dict[str, Any]:
    concept: dict[str, Any] = {
        "coding": [
            {"system": CODING_SYSTEMS.get(c.scheme, f"urn:dicom:scheme:{c.scheme}"),
             "code": c.code, "display": c.meaning}
            for c in codes
        ]
    }
    if text:
        concept["text"] = text
    return concept


def service_request_resource(truth: StudyTruth, patient_id: str) -> dict[str, Any]:
    """The ServiceRequest (imaging order) for the study, subject ``Patient/<patient_id>``."""
    identifiers = [
        _typed_identifier("ACSN", "Accession ID", truth.accession_system, truth.accession_number)
    ]
    if truth.placer_order_number:
        identifiers.append(_typed_identifier("PLAC", "Placer Identifier", PLACER_ORDER_SYSTEM,
                                             truth.placer_order_number))
    if truth.filler_order_number:
        identifiers.append(_typed_identifier("FILL", "Filler Identifier", FILLER_ORDER_SYSTEM,
                                             truth.filler_order_number))
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": identifiers,
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": "363679005", "display": "Imaging"}]}],
        "code": _concept(truth.procedure_codes, truth.description),
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": _date(truth.study_date),
    }
    reasons = []
    if truth.reason_codes:
        reasons.append(_concept(truth.reason_codes, None))
    if truth.reason_text:
        reasons.append({"text": truth.reason_text})
    if reasons:
        resource["reasonCode"] = reasons
    return resource


def _if_none_exist(system: str, value: str) -> str:
    return "identifier=" + urllib.parse.quote(f"{system}|{value}", safe=":/|")


# --- selection ------------------------------------------------------------------------------


def select_patients(
    truths: Iterable[StudyTruth], fraction: float, *, seed: int = 0
) -> set[PatientKey]:
    """A deterministic ``round(fraction * n)`` subset of the studies' distinct patients."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be between 0 and 1")
    keys = sorted({(t.patient_issuer, t.patient_id) for t in truths})
    random.Random(f"seed-ehr|patients|{seed}").shuffle(keys)
    return set(keys[: round(fraction * len(keys))])


def _select_orders(truths: Sequence[StudyTruth], fraction: float, seed: int) -> set[str]:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("orders_fraction must be between 0 and 1")
    uids = sorted(t.study_uid for t in truths)
    random.Random(f"seed-ehr|orders|{seed}").shuffle(uids)
    return set(uids[: round(fraction * len(uids))])


# --- transport ------------------------------------------------------------------------------


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _logical_id(location: str | None, resource_type: str) -> str | None:
    """``Patient/123/_history/1`` (absolute or relative) -> ``123``."""
    if not location:
        return None
    parts = location.split("?")[0].split("/")
    for i in range(len(parts) - 1):
        if parts[i] == resource_type:
            return parts[i + 1]
    return None


def _post_batch(
    client: httpx.Client, entries: list[dict[str, Any]], result: SeedResult
) -> list[dict[str, Any]]:
    """POST one batch Bundle; returns the response entries (one per request entry)."""
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
    result.requests += 1
    response = client.post("", json=bundle)
    if response.status_code >= 400:
        raise RuntimeError(
            f"batch of {len(entries)} entries failed: HTTP {response.status_code} "
            f"{response.text[:300]}"
        )
    answer = response.json()
    got: list[dict[str, Any]] = answer.get("entry", [])
    if len(got) != len(entries):
        raise RuntimeError(f"batch response has {len(got)} entries for {len(entries)} requests")
    return got


def _status(entry: dict[str, Any]) -> int:
    text = str(entry.get("response", {}).get("status", "0"))
    try:
        return int(text.split()[0])
    except ValueError:
        return 0


def _entry_error(entry: dict[str, Any]) -> str:
    response = entry.get("response", {})
    outcome = response.get("outcome", {})
    diagnostics = "; ".join(
        str(issue.get("diagnostics", "")) for issue in outcome.get("issue", [])
    )
    return f"{response.get('status', '?')} {diagnostics}".strip()


def _find_id(client: httpx.Client, resource_type: str, system: str, value: str) -> str | None:
    """Fallback when a batch response carries no location: search by identifier."""
    response = client.get(resource_type, params={"identifier": f"{system}|{value}"})
    if response.status_code != 200:
        return None
    entries = response.json().get("entry", [])
    if len(entries) != 1:
        return None
    found = entries[0].get("resource", {}).get("id")
    return str(found) if found else None


def make_client(
    fhir_url: str,
    *,
    bearer_token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 60.0,
) -> httpx.Client:
    """An ``httpx.Client`` for the FHIR base URL, with optional bearer or basic auth."""
    headers = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
    auth: httpx.Auth | None = None
    if bearer_token:
        headers["Authorization"] = f"Bearer {bearer_token}"
    elif username is not None:
        auth = httpx.BasicAuth(username, password or "")
    return httpx.Client(
        base_url=fhir_url.rstrip("/") + "/", headers=headers, auth=auth, timeout=timeout
    )


# --- orchestration --------------------------------------------------------------------------


def seed_ehr(
    truths: Iterable[StudyTruth],
    *,
    fhir_url: str | None = None,
    client: httpx.Client | None = None,
    patients_fraction: float = 1.0,
    orders_fraction: float = 1.0,
    seed: int = 0,
    batch_size: int = 100,
    bearer_token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 60.0,
) -> SeedResult:
    """Create Patients and ServiceRequests for ``truths``; returns counts and logical ids.

    Pass either ``fhir_url`` (a client is made with the given auth) or a ready ``client``
    whose base URL is the FHIR base.
    """
    if not 1 <= batch_size <= 1000:
        raise ValueError("batch_size must be between 1 and 1000")
    studies = list(truths)
    owns_client = client is None
    if client is None:
        if fhir_url is None:
            raise ValueError("give fhir_url or client")
        client = make_client(fhir_url, bearer_token=bearer_token, username=username,
                             password=password, timeout=timeout)
    result = SeedResult()
    started = time.perf_counter()
    try:
        _seed(client, studies, result, patients_fraction, orders_fraction, seed, batch_size)
    finally:
        if owns_client:
            client.close()
    result.seconds = time.perf_counter() - started
    return result


def _seed(
    client: httpx.Client,
    studies: list[StudyTruth],
    result: SeedResult,
    patients_fraction: float,
    orders_fraction: float,
    seed: int,
    batch_size: int,
) -> None:
    first_study: dict[PatientKey, StudyTruth] = {}
    for t in studies:
        first_study.setdefault((t.patient_issuer, t.patient_id), t)
    selected = select_patients(studies, patients_fraction, seed=seed)
    result.patients_total = len(first_study)
    result.patients_selected = len(selected)

    # 1. Patients
    patient_keys = sorted(selected)
    for chunk in _batches(patient_keys, batch_size):
        entries = []
        for key in chunk:
            truth = first_study[key]
            entries.append({
                "resource": patient_resource(truth),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": _if_none_exist(truth.patient_system, truth.patient_id),
                },
            })
        try:
            answers = _post_batch(client, entries, result)
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            result.errors.append(f"Patient batch: {type(exc).__name__}: {exc}")
            continue
        for key, answer in zip(chunk, answers, strict=True):
            status = _status(answer)
            if status >= 300 or status == 0:
                result.errors.append(f"Patient {key[0]}|{key[1]}: {_entry_error(answer)}")
                continue
            if status == 201:
                result.patients_created += 1
            else:
                result.patients_existing += 1
            truth = first_study[key]
            logical = _logical_id(answer.get("response", {}).get("location"), "Patient")
            logical = logical or _find_id(client, "Patient", truth.patient_system,
                                          truth.patient_id)
            if logical is None:
                result.errors.append(f"Patient {key[0]}|{key[1]}: no id in the response")
                continue
            result.patient_ids[key] = logical

    # 2. ServiceRequests
    wanted = _select_orders(studies, orders_fraction, seed)
    orders = []
    for t in studies:
        patient = result.patient_ids.get((t.patient_issuer, t.patient_id))
        if patient is None or t.study_uid not in wanted:
            result.studies_without_order += 1
            continue
        orders.append((t, patient))
    for order_chunk in _batches(orders, batch_size):
        entries = [
            {
                "resource": service_request_resource(t, patient),
                "request": {
                    "method": "POST",
                    "url": "ServiceRequest",
                    "ifNoneExist": _if_none_exist(t.accession_system, t.accession_number),
                },
            }
            for t, patient in order_chunk
        ]
        try:
            answers = _post_batch(client, entries, result)
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            result.errors.append(f"ServiceRequest batch: {type(exc).__name__}: {exc}")
            continue
        for (t, _), answer in zip(order_chunk, answers, strict=True):
            status = _status(answer)
            if status >= 300 or status == 0:
                result.errors.append(
                    f"ServiceRequest {t.accession_number}: {_entry_error(answer)}"
                )
                continue
            if status == 201:
                result.service_requests_created += 1
            else:
                result.service_requests_existing += 1
            location = answer.get("response", {}).get("location")
            logical = _logical_id(location, "ServiceRequest")
            if logical:
                result.service_request_ids[t.study_uid] = logical


# --- command line ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m samples.seed_ehr",
        description="Create the Patients and ServiceRequests of generated studies in a FHIR "
        "server (same --count/--seed/--profile/--patients/--id-prefix as samples.load).",
    )
    parser.add_argument("--fhir", required=True, help="FHIR base URL, e.g. .../fhir")
    parser.add_argument("--count", type=int, default=100, help="number of studies")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=PROFILES, default="mixed")
    parser.add_argument("--patients", type=int, help="patient pool size (default count/4)")
    parser.add_argument("--id-prefix", default="")
    parser.add_argument("--uid-root")
    parser.add_argument("--manifest", help="read the studies from this manifest instead")
    parser.add_argument("--patients-fraction", type=float, default=1.0,
                        help="share of the patients to create (0..1)")
    parser.add_argument("--orders-fraction", type=float, default=1.0,
                        help="share of the studies that get a ServiceRequest (0..1)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--bearer-token", default=os.environ.get("FHIR_BEARER_TOKEN"),
                        help="bearer token (default: $FHIR_BEARER_TOKEN)")
    parser.add_argument("--user", help="HTTP basic auth user")
    parser.add_argument("--password", default=os.environ.get("FHIR_PASSWORD"),
                        help="HTTP basic auth password (default: $FHIR_PASSWORD)")
    parser.add_argument("--timeout", type=float, default=60.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.manifest:
        truths = read_manifest(args.manifest)
    else:
        truths = [
            s.truth
            for s in generate_studies(
                args.count, seed=args.seed, profile=args.profile, patients=args.patients,
                id_prefix=args.id_prefix, uid_root=args.uid_root,
            )
        ]
    result = seed_ehr(
        truths,
        fhir_url=args.fhir,
        patients_fraction=args.patients_fraction,
        orders_fraction=args.orders_fraction,
        seed=args.seed,
        batch_size=args.batch_size,
        bearer_token=args.bearer_token,
        username=args.user,
        password=args.password,
        timeout=args.timeout,
    )
    print(result.summary())
    for error in result.errors[:20]:
        print(f"  error: {error}", file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
