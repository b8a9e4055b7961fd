"""The analytics tables: FHIR resources of the imaging record as flat rows (pure).

One row per thing, each with its patient reference, so an analyst's SQL needs no FHIR:

=============  =============================================================================
``studies``    one per ImagingStudy: id, study UID, patient, accession, started (and its
               year), modality (the first that is not a document: SR, KO, PR, DOC, OT),
               every modality, body site (the study-level rule below), procedure codes,
               series/instance counts, order references
``series``     one per ImagingStudy.series: study id, patient, series UID, modality, body
               site, instances, started
``reports``    one per DiagnosticReport that references an ImagingStudy: id, SOP Instance
               UID, study id, patient, status, code, effective, issued, conclusion
``dose``       one per dose Observation: ``summary`` (LOINC 73569-6) with the DLP / DAP /
               dose (RP) totals, or ``event`` (DCM 113852) with CTDIvol, DLP and DAP; study
               id (``partOf``), patient, effective, body site; values converted to the
               canonical unit of mappings/record/dose_items.json (mGy, mGy.cm, Gy.m2, Gy),
               a value in a unit the rules do not list is left empty
=============  =============================================================================

Study-level body site: the body site most series of the study carry (documents and series
without one not counted), the first such series (by number) on a tie; empty when none has
one.  Dates are kept as FHIR writes them (with their offset); ``year`` is the study's
local year as written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from bridge.record.fhir import JSON
from bridge.record.rules import DoseRules

__all__ = ["DOCUMENT_MODALITIES", "TABLES", "dose_row", "report_row", "series_rows",
           "study_row"]

#: modalities of series that hold documents, not images (PS3.3 C.7.3.1.1.1)
DOCUMENT_MODALITIES = frozenset({"SR", "KO", "PR", "DOC", "OT", "REG", "SEG"})
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_SUMMARY = ("http://loinc.org", "73569-6")
_EVENT = (_DCM, "113852")

#: table -> its columns and their types (``str``, ``int``, ``float``)
TABLES: dict[str, list[tuple[str, str]]] = {
    "studies": [("id", "str"), ("study_uid", "str"), ("patient", "str"),
                ("accession", "str"), ("started", "str"), ("year", "int"),
                ("modality", "str"), ("modalities", "str"), ("body_site", "str"),
                ("body_site_display", "str"), ("procedure_codes", "str"),
                ("number_of_series", "int"), ("number_of_instances", "int"),
                ("based_on", "str")],
    "series": [("study_id", "str"), ("patient", "str"), ("series_uid", "str"),
               ("number", "int"), ("modality", "str"), ("body_site", "str"),
               ("number_of_instances", "int"), ("started", "str")],
    "reports": [("id", "str"), ("sop_uid", "str"), ("study_id", "str"), ("patient", "str"),
                ("status", "str"), ("code", "str"), ("effective", "str"), ("issued", "str"),
                ("conclusion", "str")],
    "dose": [("id", "str"), ("kind", "str"), ("uid", "str"), ("study_id", "str"),
             ("patient", "str"), ("effective", "str"), ("year", "int"), ("body_site", "str"),
             ("ctdivol_mgy", "float"), ("dlp_mgy_cm", "float"), ("dap_gy_m2", "float"),
             ("dlp_total_mgy_cm", "float"), ("dap_total_gy_m2", "float"),
             ("dose_rp_total_gy", "float")],
}

Row = dict[str, Any]


def _ref(value: Any) -> str | None:
    return value.get("reference") if isinstance(value, dict) else None


def _id_of(reference: str | None) -> str | None:
    return reference.split("/")[-1] if reference else None


def _uid(resource: JSON) -> str | None:
    for ident in resource.get("identifier", []) or []:
        if ident.get("system") == "urn:dicom:uid":
            return str(ident.get("value", "")).removeprefix("urn:oid:") or None
    return None


def _year(when: str | None) -> int | None:
    return int(when[:4]) if when and len(when) >= 4 and when[:4].isdigit() else None


def _codes(concepts: Iterable[Any]) -> str | None:
    out = []
    for concept in concepts:
        if not isinstance(concept, dict):
            continue
        codings = concept.get("coding") or []
        out += [c.get("code") for c in codings if c.get("code")] or \
            ([concept["text"]] if concept.get("text") else [])
    return ",".join(out) or None


def _accession(resource: JSON) -> str | None:
    for ident in resource.get("identifier", []) or []:
        codings = ((ident.get("type") or {}).get("coding")) or []
        if any(c.get("code") == "ACSN" for c in codings):
            value = ident.get("value")
            return str(value) if value else None
    return None


def _study_body_site(series: list[JSON]) -> tuple[str | None, str | None]:
    sites = [s["bodySite"] for s in sorted(series, key=lambda s: s.get("number") or 0)
             if isinstance(s.get("bodySite"), dict) and s["bodySite"].get("code")
             and (s.get("modality") or {}).get("code") not in DOCUMENT_MODALITIES]
    if not sites:
        return None, None
    counts = Counter(site["code"] for site in sites)
    top = max(counts.values())
    first = next(site for site in sites if counts[site["code"]] == top)
    return first["code"], first.get("display")


def study_row(study: JSON) -> Row:
    """The ``studies`` row of an ImagingStudy."""
    series = [s for s in study.get("series", []) or [] if isinstance(s, dict)]
    modalities = [str(m["code"]) for m in study.get("modality", []) or []
                  if isinstance(m, dict) and m.get("code")]
    for s in series:
        code = (s.get("modality") or {}).get("code")
        if code and code not in modalities:
            modalities.append(code)
    imaging = [m for m in modalities if m not in DOCUMENT_MODALITIES]
    site, site_display = _study_body_site(series)
    started = study.get("started")
    return {"id": study.get("id"), "study_uid": _uid(study),
            "patient": _ref(study.get("subject")), "accession": _accession(study),
            "started": started, "year": _year(started),
            "modality": imaging[0] if imaging else (modalities[0] if modalities else None),
            "modalities": ",".join(modalities) or None, "body_site": site,
            "body_site_display": site_display,
            "procedure_codes": _codes(study.get("procedureCode", []) or []),
            "number_of_series": study.get("numberOfSeries", len(series)),
            "number_of_instances": study.get("numberOfInstances"),
            "based_on": ",".join(r for r in (_ref(b) for b in study.get("basedOn", []) or [])
                                 if r) or None}


def series_rows(study: JSON) -> list[Row]:
    """The ``series`` rows of an ImagingStudy."""
    patient = _ref(study.get("subject"))
    return [{"study_id": study.get("id"), "patient": patient, "series_uid": s.get("uid"),
             "number": s.get("number"), "modality": (s.get("modality") or {}).get("code"),
             "body_site": (s.get("bodySite") or {}).get("code"),
             "number_of_instances": s.get("numberOfInstances"), "started": s.get("started")}
            for s in study.get("series", []) or [] if isinstance(s, dict)]


def report_row(report: JSON) -> Row | None:
    """The ``reports`` row of a DiagnosticReport; ``None`` when it references no
    ImagingStudy (not an imaging report)."""
    studies = [_ref(s) for s in report.get("imagingStudy", []) or []]
    study = next((s for s in studies if s and s.startswith("ImagingStudy/")), None)
    if study is None:
        return None
    return {"id": report.get("id"), "sop_uid": _uid(report), "study_id": _id_of(study),
            "patient": _ref(report.get("subject")), "status": report.get("status"),
            "code": _codes([report.get("code")]), "effective": report.get("effectiveDateTime"),
            "issued": report.get("issued"), "conclusion": report.get("conclusion")}


def _is(concept: Any, system_code: tuple[str, str]) -> bool:
    codings = (concept or {}).get("coding") or [] if isinstance(concept, dict) else []
    return any((c.get("system"), c.get("code")) == system_code for c in codings)


#: dose column -> the DCM code of its component and whether it is an accumulated item
_DOSE_COLUMNS: dict[str, tuple[str, bool]] = {
    "ctdivol_mgy": ("113830", False), "dlp_mgy_cm": ("113838", False),
    "dap_gy_m2": ("122130", False), "dlp_total_mgy_cm": ("113813", True),
    "dap_total_gy_m2": ("113722", True), "dose_rp_total_gy": ("113725", True),
}


def _canonical(quantity: Mapping[str, Any], factors: Mapping[str, float]) -> float | None:
    value, unit = quantity.get("value"), quantity.get("code") or quantity.get("unit")
    factor = factors.get(str(unit))
    return float(value) * factor if isinstance(value, int | float) and factor else None


def dose_row(observation: JSON, rules: DoseRules) -> Row | None:
    """The ``dose`` row of a dose summary or irradiation event Observation; ``None`` for
    any other Observation."""
    code = observation.get("code")
    kind = "summary" if _is(code, _SUMMARY) else "event" if _is(code, _EVENT) else None
    if kind is None:
        return None
    parts = [_ref(p) for p in observation.get("partOf", []) or []]
    study = next((p for p in parts if p and p.startswith("ImagingStudy/")), None)
    effective = observation.get("effectiveDateTime")
    row: Row = {"id": observation.get("id"), "kind": kind, "uid": _uid(observation),
                "study_id": _id_of(study), "patient": _ref(observation.get("subject")),
                "effective": effective, "year": _year(effective),
                "body_site": _codes([observation.get("bodySite")])}
    components = {}
    for component in observation.get("component", []) or []:
        codings = ((component.get("code") or {}).get("coding")) or []
        dcm = next((c.get("code") for c in codings if c.get("system") == _DCM), None)
        if dcm and isinstance(component.get("valueQuantity"), dict):
            components[dcm] = component["valueQuantity"]
    for column, (dcm, accumulated) in _DOSE_COLUMNS.items():
        table = rules.accumulated if accumulated else rules.event
        rule = table.get(dcm)
        quantity = components.get(dcm)
        row[column] = _canonical(quantity, rule.units) if quantity and rule else None
    return row
