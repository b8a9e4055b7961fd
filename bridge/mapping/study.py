"""The FHIR R4 ImagingStudy and Endpoint resources of one study."""

from __future__ import annotations

import copy
from typing import Any

from bridge.mapping import codes, identifiers, names
from bridge.mapping import dicom_json as dj
from bridge.mapping import tags as t
from bridge.mapping.context import StudyContext
from bridge.mapping.grouping import SeriesData
from bridge.mapping.problems import Problem
from bridge.mapping.result import EndpointSpec, PatientLink, ServiceRequestLink
from bridge.mapping.series import series_element
from bridge.mapping.values import IS_MAX

JSON = dict[str, Any]

NO_STUDY_DATE = Problem(
    "missing-study-date", "absent or empty (Type 2, PS3.3 C.7.2.1): started left out"
)

#: FHIR R4 Endpoint.connectionType (extensible): endpoint-connection-type#dicom-wado-rs
CONNECTION_TYPE: JSON = {
    "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
    "code": "dicom-wado-rs",
    "display": "DICOM WADO-RS",
}


def endpoint_resource(ctx: StudyContext, spec: EndpointSpec) -> JSON:
    """The archive's Endpoint: address is the WADO-RS base URL, identified by it so the
    sync can create it conditionally (``Endpoint?identifier=system|address``)."""
    section = ctx.mapping.endpoint
    resource: JSON = {
        "resourceType": "Endpoint",
        "identifier": [{"system": section.identifier_system, "value": spec.address}],
        "status": "active",
        "connectionType": dict(CONNECTION_TYPE),
    }
    name = section.name or spec.name
    if name:
        resource["name"] = name
    resource["payloadType"] = copy.deepcopy(ctx.compiled.payload_types)
    if section.payload_mime_type:
        resource["payloadMimeType"] = list(section.payload_mime_type)
    resource["address"] = spec.address
    return resource


def endpoint_reference(ctx: StudyContext, spec: EndpointSpec) -> JSON:
    """ImagingStudy.endpoint: the resolved reference, else a logical one by identifier."""
    if spec.id_or_ref:
        return {"reference": spec.id_or_ref}
    identifier = {"system": ctx.mapping.endpoint.identifier_system, "value": spec.address}
    return {"type": "Endpoint", "identifier": identifier}


def _physicians(ctx: StudyContext, ds: dj.Dataset, tag: str) -> list[JSON]:
    out: list[JSON] = []
    for groups in dj.pn_groups(ds, tag, ctx.sink):
        text = names.display(groups)
        if text is not None and {"display": text} not in out:
            out.append({"display": text})
    return out


def imaging_study(
    ctx: StudyContext,
    *,
    study_uid: str,
    ds: dj.Dataset,
    series: list[SeriesData],
    patient: PatientLink,
    patient_reference: str | None,
    orders: list[list[ServiceRequestLink]],
    service_request_references: dict[str, str] | None,
    endpoint: EndpointSpec,
    with_instances: bool,
) -> JSON:
    """ImagingStudy (FHIR R4 4.0.1), elements in the specification's order; no id, no meta."""
    sink, mapping = ctx.sink, ctx.mapping
    elements = mapping.elements
    series_json = [series_element(ctx, s, with_instances=with_instances) for s in series]

    study: JSON = {"resourceType": "ImagingStudy"}
    study["identifier"] = identifiers.study_identifiers(ctx, study_uid, ds, orders)
    study["status"] = mapping.status
    modality_codes = [s["modality"]["code"] for s in series_json]
    modality_codes += dj.code_strings(ds, t.MODALITIES_IN_STUDY, sink)
    modalities = codes.study_modalities(ctx, modality_codes)
    if modalities:
        study["modality"] = modalities
    subject = patient.reference()
    if patient_reference:
        # keep the business identifier next to the literal reference (R4 Reference 2.3.0):
        # it tells a reader who the Patient is even after a merge
        subject = {
            "reference": patient_reference,
            **{k: v for k, v in subject.items() if k == "identifier"},
        }
    study["subject"] = subject
    started = ctx.started(ds, t.STUDY_DATE, t.STUDY_TIME)
    if started is not None:
        study["started"] = started
    elif dj.is_empty(ds, t.STUDY_DATE):
        # unusable values were reported by ctx.started; an empty one is reported here, since
        # such a study is easily missed by date-window searches (issue 12 item 3)
        sink.add(t.STUDY_DATE, None, NO_STUDY_DATE)
    based_on = identifiers.based_on(orders, service_request_references)
    if based_on:
        study["basedOn"] = based_on
    if elements.referrer:
        referrers = _physicians(ctx, ds, t.REFERRING_PHYSICIAN_NAME)
        if referrers:
            study["referrer"] = referrers[0]  # R4 referrer is 0..1
    if elements.interpreter:
        interpreters = _physicians(ctx, ds, t.NAME_OF_PHYSICIANS_READING_STUDY)
        if interpreters:
            study["interpreter"] = interpreters
    study["endpoint"] = [endpoint_reference(ctx, endpoint)]
    recorded_series = dj.integer(ds, t.NUMBER_OF_STUDY_RELATED_SERIES, sink) or 0
    study["numberOfSeries"] = max(len(series_json), recorded_series)
    recorded_instances = dj.integer(ds, t.NUMBER_OF_STUDY_RELATED_INSTANCES, sink) or 0
    total = max(sum(s.count for s in series), recorded_instances)
    study["numberOfInstances"] = min(total, IS_MAX)  # FHIR unsignedInt holds up to 2^31-1
    if elements.procedure_code:
        procedures = codes.procedure_codes(ctx, ds)
        if procedures:
            study["procedureCode"] = procedures
    if elements.location:
        location = dj.text(ds, t.INSTITUTIONAL_DEPARTMENT_NAME, "LO", sink) or dj.text(
            ds, t.PERFORMED_LOCATION, "SH", sink
        )
        if location is not None:
            study["location"] = {"display": location}
    if elements.reason_code:
        reasons = codes.reason_codes(ctx, ds)
        if reasons:
            study["reasonCode"] = reasons
    if elements.description:
        description = dj.text(ds, t.STUDY_DESCRIPTION, "LO", sink)
        if description is not None:
            study["description"] = description
    if series_json:
        study["series"] = series_json
    return study
