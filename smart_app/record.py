"""The patient's reports and radiation dose beside the imaging history (issue 16).

Read with the session's token, like the history: ``GET {iss}/DiagnosticReport?patient=X``
(the reports that reference an ImagingStudy) and ``GET {iss}/Observation?patient=X&code=
http://loinc.org|73569-6`` (the radiation dose summaries the bridge writes from dose SRs,
HL7/IHE Radiation Dose Summary IG), indexed by ImagingStudy id.  The app asks for
``patient/DiagnosticReport.rs`` and ``patient/Observation.rs`` only when the deployment adds
them (``smart.extra_scopes``); an EHR that refuses (403) leaves the history as it was, with
a note, rather than failing the page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from smart_app.history import FhirReader, FhirReadError

__all__ = ["DoseCell", "PatientRecord", "ReportCell", "dose_period", "granted",
           "patient_record", "record_of", "report_text"]

SUMMARY_CODE = "http://loinc.org|73569-6"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
PAGE_SIZE = 200
#: DLP total (DCM 113813) in mGy.cm from the units the dose rules allow
_DLP_UNITS = {"mGy.cm": 1.0, "Gy.cm": 1000.0}
#: DAP total (DCM 113722) in Gy.m2
_DAP_UNITS = {"Gy.m2": 1.0, "dGy.cm2": 1e-5, "cGy.cm2": 1e-6, "mGy.cm2": 1e-7, "uGy.m2": 1e-6}


@dataclass(frozen=True, slots=True)
class ReportCell:
    """One DiagnosticReport of a study, as the history row shows it."""

    id: str
    status: str
    conclusion: str | None
    title: str | None


@dataclass(frozen=True, slots=True)
class DoseCell:
    """One dose summary of a study: DLP total (CT) or DAP total (projection X-ray)."""

    day: date | None
    dlp_mgy_cm: float | None
    dap_gy_m2: float | None


@dataclass
class PatientRecord:
    """The reports and dose summaries of the patient, by ImagingStudy id."""

    reports: dict[str, list[ReportCell]] = field(default_factory=dict)
    dose: dict[str, list[DoseCell]] = field(default_factory=dict)
    #: why the record could not be read (the EHR refused the scopes); None when it was
    unavailable: str | None = None

    def cumulative_dlp(self, lower: date | None, upper: date | None) -> tuple[float, int]:
        """The sum of the CT DLP totals (mGy.cm) of the dose summaries dated within
        ``[lower, upper]`` (either open), and how many summaries it adds."""
        cells = [c for cells in self.dose.values() for c in cells if c.dlp_mgy_cm is not None
                 and (lower is None or (c.day is not None and c.day >= lower))
                 and (upper is None or (c.day is not None and c.day <= upper))]
        return sum(c.dlp_mgy_cm or 0.0 for c in cells), len(cells)


def _study_ids(refs: Any) -> list[str]:
    out = []
    for ref in refs or []:
        value = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(value, str) and value.startswith("ImagingStudy/"):
            out.append(value.split("/", 1)[1])
    return out


def _title(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return None


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if isinstance(value, str) else None
    except ValueError:
        return None


def _total(observation: Mapping[str, Any], code: str, units: Mapping[str, float]
           ) -> float | None:
    for component in observation.get("component") or []:
        codings = (component.get("code") or {}).get("coding") or []
        if not any(c.get("system") == _DCM and c.get("code") == code for c in codings):
            continue
        quantity = component.get("valueQuantity") or {}
        factor = units.get(str(quantity.get("code") or quantity.get("unit")))
        value = quantity.get("value")
        if factor is not None and isinstance(value, int | float):
            return float(value) * factor
    return None


def _matches(entries: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in entries
            if (e.get("resource") or {}).get("resourceType") == resource_type
            and (e.get("search") or {}).get("mode", "match") == "match"]


async def patient_record(reader: FhirReader, patient: str) -> PatientRecord:
    """The patient's reports and dose summaries; a refusal (401 excepted: the session is
    over) is said in ``unavailable``."""
    pid = patient.removeprefix("Patient/")
    record = PatientRecord()
    try:
        reports = _matches(await reader.search_all("DiagnosticReport", {
            "patient": pid, "_count": str(PAGE_SIZE),
            "_elements": "status,code,conclusion,imagingStudy"}), "DiagnosticReport")
        summaries = _matches(await reader.search_all("Observation", {
            "patient": pid, "code": SUMMARY_CODE, "_count": str(PAGE_SIZE)}), "Observation")
    except FhirReadError as exc:
        if exc.http_status == 401:
            raise
        record.unavailable = f"Reports and dose are not shown: {exc.message}"
        return record
    for report in reports:
        if report.get("status") == "entered-in-error":
            continue
        cell = ReportCell(str(report.get("id", "")), str(report.get("status", "unknown")),
                          report.get("conclusion"), _title(report.get("code")))
        for study in _study_ids(report.get("imagingStudy")):
            record.reports.setdefault(study, []).append(cell)
    for summary in summaries:
        if summary.get("status") == "entered-in-error":
            continue
        dose = DoseCell(_day(summary.get("effectiveDateTime")),
                        _total(summary, "113813", _DLP_UNITS),
                        _total(summary, "113722", _DAP_UNITS))
        for study in _study_ids(summary.get("partOf")):
            record.dose.setdefault(study, []).append(dose)
    return record


def report_text(report: Mapping[str, Any]) -> tuple[str | None, list[tuple[int, str, str]]]:
    """A DiagnosticReport's text (its first text/plain presentedForm, decoded) and its
    other forms as ``(index, content type, title)`` to open on their own."""
    text: str | None = None
    documents: list[tuple[int, str, str]] = []
    for n, form in enumerate(report.get("presentedForm") or []):
        kind = str(form.get("contentType") or "application/octet-stream")
        if text is None and kind.startswith("text/plain") and form.get("data"):
            try:
                text = base64.b64decode(form["data"]).decode("utf-8", errors="replace")
                continue
            except (binascii.Error, ValueError):
                pass
        documents.append((n, kind, str(form.get("title") or f"document {n + 1}")))
    return text, documents


def granted(scope: Any, resource: str) -> bool:
    """Whether a granted ``scope`` string lets the app read ``resource`` of the patient
    (SMART v1 ``.read``/``.*`` or v2 ``.r``/``.rs``..., patient/ or user/, or ``*``)."""
    for item in str(scope or "").split():
        context, _, rest = item.partition("/")
        kind, _, access = rest.partition(".")
        if context in ("patient", "user") and kind in (resource, "*") and (
                access in ("read", "*") or "r" in access.split("?")[0]):
            return True
    return False


async def record_of(scope: Any, reader: FhirReader, patient: str) -> PatientRecord | None:
    """The patient's record when the session may read DiagnosticReport or Observation
    (the deployment asked for them in ``smart.extra_scopes``); else None: the history is
    shown as without the record."""
    if not (granted(scope, "DiagnosticReport") or granted(scope, "Observation")):
        return None
    return await patient_record(reader, patient)


def dose_period(record: PatientRecord | None, params: Mapping[str, str]
                ) -> dict[str, Any] | None:
    """The history page's cumulative DLP over the period ``dose_from``..``dose_to`` (ISO
    dates, either open; a malformed one is ignored)."""
    if record is None:
        return None
    lower, upper = _day(params.get("dose_from")), _day(params.get("dose_to"))
    total, count = record.cumulative_dlp(lower, upper)
    return {"total": total, "count": count, "lower": lower, "upper": upper}
