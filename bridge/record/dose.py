"""X-Ray Radiation Dose SR (DICOM JSON) -> FHIR R4 Observations, following the HL7/IHE
Radiation Dose Summary for Diagnostic Procedures IG (1.0.0).

* One summary Observation per SR (IG profile ``radiation-dose-summary``): code LOINC 73569-6
  "Radiation exposure and protection information", identifier the SR's SOP Instance UID,
  ``partOf`` the ImagingStudy, ``subject`` the patient, ``effectiveDateTime`` the start of
  X-ray irradiation (113809; else the content date-time), components: the procedure
  reported (121058) and the accumulated items of mappings/record/dose_items.json (CT: DLP
  total 113813, TID 10012; projection X-ray: DAP total 113722 and dose (RP) total 113725,
  TID 10002).
* One Observation per irradiation event (a CT Acquisition container 113819, TID 10013, or an
  Irradiation Event X-Ray Data container 113706, TID 10003): code DCM 113852 "Irradiation
  Event", identifier the Irradiation Event UID (113769), ``bodySite`` the target region
  (123014), components CTDIvol 113830, DLP 113838, DAP 122130 and the CTDIw phantom (113835).

Values keep the units the SR states (UCUM, PS3.16 CID 7181 style: mGy, mGy.cm, Gy.m2 ...);
a NUM item without a value, without units, with units the item may not carry, or outside its
physical range is left out with a :class:`~bridge.record.result.RecordWarning` naming it.
Pure: the caller passes the ImagingStudy and Patient references.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.mapping import tags
from bridge.record import sr_tags as st
from bridge.record.content import ContentItem, read_tree, sop_instance_uid, template_warnings
from bridge.record.fhir import (
    JSON,
    SCHEMES,
    concept,
    da_tm,
    dt_value,
    study_offset,
    uid_identifier,
)
from bridge.record.result import RecordResult, RecordWarning
from bridge.record.rules import DoseItem, DoseRules, load_dose_rules

#: the templates this mapping knows (PS3.16): projection X-ray and CT radiation dose
DOSE_TEMPLATES = frozenset({"10001", "10011"})
SUMMARY_CODE: JSON = {"coding": [{"system": "http://loinc.org", "code": "73569-6",
                                  "display": "Radiation exposure and protection information"}]}
EVENT_CODE: JSON = {"coding": [{"system": SCHEMES["DCM"], "code": "113852",
                                "display": "Irradiation Event"}]}
_DCM = "DCM"


def _quantity(
    item: ContentItem, rule: DoseItem, warnings: list[RecordWarning]
) -> JSON | None:
    number, unit = item.measured()
    where = item.where()
    if number is None:
        warnings.append(RecordWarning("dose-value-missing", where, "no numeric value"))
        return None
    if unit is None:
        warnings.append(RecordWarning("dose-unit-missing", where, "no measurement units"))
        return None
    factor = rule.units.get(unit.value) if unit.scheme == "UCUM" else None
    if factor is None:
        warnings.append(RecordWarning(
            "dose-unit-unexpected", where,
            f"units ({unit.scheme},{unit.value}); expected UCUM {sorted(rule.units)}"))
        return None
    canonical = number * factor
    if not rule.low <= canonical <= rule.high:
        first = next(iter(rule.units))
        warnings.append(RecordWarning(
            "dose-value-out-of-range", where,
            f"{number:g} {unit.value} is outside {rule.low:g}..{rule.high:g} {first}"))
        return None
    return {"value": number, "unit": unit.value, "system": SCHEMES["UCUM"],
            "code": unit.value}


def _components(
    items: list[ContentItem], table: dict[str, DoseItem], warnings: list[RecordWarning]
) -> list[JSON]:
    out: list[JSON] = []
    for item in items:
        if item.concept is None or item.concept.scheme != _DCM:
            continue
        rule = table.get(item.concept.value)
        if item.value_type == "NUM" and rule is not None:
            quantity = _quantity(item, rule, warnings)
            if quantity is not None:
                out.append({"code": concept(item.concept), "valueQuantity": quantity})
        elif item.value_type == "CODE" and item.concept.value in ("121058", "113835"):
            value = item.code_value()
            if value is not None:
                out.append({"code": concept(item.concept),
                            "valueCodeableConcept": concept(value)})
    return out


def _event(
    container: ContentItem, base: JSON, offset: int | None, rules: DoseRules,
    warnings: list[RecordWarning],
) -> JSON:
    items = [i for i in container.walk() if i is not container]
    obs: JSON = {"resourceType": "Observation"}
    event_uid = next((i.uid() for i in items if i.is_concept(_DCM, "113769")), None)
    if event_uid:
        obs["identifier"] = [uid_identifier(event_uid)]
    else:
        warnings.append(RecordWarning("event-uid-missing", container.where(),
                                      "no (DCM,113769) Irradiation Event UID"))
    obs.update(base)
    obs["code"] = EVENT_CODE
    started = next((i.datetime() for i in items if i.is_concept(_DCM, "111526")), None)
    effective = dt_value(started, offset)
    if effective:
        obs["effectiveDateTime"] = effective
    region = next((i.code_value() for i in items if i.is_concept(_DCM, "123014")), None)
    if region is not None:
        obs["bodySite"] = concept(region)
    components = _components(items, rules.event, warnings)
    if components:
        obs["component"] = components
    return obs


def map_dose_sr(
    ds: Mapping[str, Any],
    *,
    imaging_study: JSON,
    patient: JSON,
    rules: DoseRules | None = None,
) -> RecordResult:
    """Map one X-Ray Radiation Dose SR instance (DICOM JSON, PS3.18 F.2) to Observations.

    :param imaging_study: the Reference to the study's ImagingStudy (``partOf``).
    :param patient: the Reference to the Patient (``subject``).
    :raises DicomDataError: without a SOP Instance UID (nothing to identify the summary by).
    """
    rules = rules or load_dose_rules()
    sop_uid = sop_instance_uid(ds, "the dose SR")
    warnings = template_warnings(ds, DOSE_TEMPLATES, assumed="read as TID 10001/10011",
                                 otherwise="dose items read wherever they occur")
    root = read_tree(ds)
    offset = study_offset(ds, tags.TIMEZONE_OFFSET_FROM_UTC)
    base: JSON = {"status": "final", "partOf": [imaging_study], "subject": patient}
    # the irradiation's start (113809, TID 10001/10011) else the SR's content date-time
    started = next((i.datetime() for i in root.children if i.is_concept(_DCM, "113809")), None)
    effective = dt_value(started, offset) or da_tm(ds, st.CONTENT_DATE, st.CONTENT_TIME, offset)
    if effective:
        base["effectiveDateTime"] = effective
    events = [i for i in root.walk() if i.concept is not None and i.concept.scheme == _DCM
              and i.value_type == "CONTAINER" and i.concept.value in rules.event_containers]
    inside = {id(j) for e in events for j in e.walk()}
    top = [i for i in root.walk() if i is not root and id(i) not in inside]
    summary: JSON = {"resourceType": "Observation", "identifier": [uid_identifier(sop_uid)],
                     **base, "code": SUMMARY_CODE}
    components = _components(top, rules.accumulated, warnings)
    if components:
        summary["component"] = components
    resources = [summary, *(_event(e, base, offset, rules, warnings) for e in events)]
    return RecordResult(tuple(resources), tuple(warnings))
