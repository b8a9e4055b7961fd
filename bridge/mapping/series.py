"""FHIR R4 ImagingStudy.series and series.instance elements of one grouped series."""

from __future__ import annotations

from typing import Any

from bridge.mapping import codes, names
from bridge.mapping import dicom_json as dj
from bridge.mapping import tags as t
from bridge.mapping.context import RFC3986, StudyContext
from bridge.mapping.grouping import SeriesData
from bridge.mapping.problems import Problem

JSON = dict[str, Any]
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

NEGATIVE = Problem("negative-number", "negative: FHIR unsignedInt cannot hold it")
NO_SOP_CLASS = Problem(
    "missing-sop-class-uid",
    "absent or unusable: the instance is counted but not listed (sopClass is 1..1)",
)


def _performers(ctx: StudyContext, ds: dj.Dataset, where: str) -> list[JSON]:
    # R4 series.performer.function binds (extensible) to series-performer-function:
    # v3-ParticipationType CON | VRF | PRF | SPRF | REF.  There is no "operator" code: the
    # operator is a secondary performer (SPRF), with the DICOM role kept as text.
    out: list[JSON] = []
    for tag, code, display, role in (
        (t.PERFORMING_PHYSICIAN_NAME, "PRF", "performer", "performing physician"),
        (t.OPERATORS_NAME, "SPRF", "secondary performer", "operator"),
    ):
        function = {
            "coding": [{"system": V3_PARTICIPATION, "code": code, "display": display}],
            "text": role,
        }
        for groups in dj.pn_groups(ds, tag, ctx.sink, where):
            text = names.display(groups)
            if text is not None:
                entry = {"function": function, "actor": {"display": text}}
                if entry not in out:
                    out.append(entry)
    return out


def _unsigned(ctx: StudyContext, value: int | None, tag: str, where: str | None) -> int | None:
    if value is not None and value < 0:
        ctx.sink.add(tag, value, NEGATIVE, where)
        return None
    return value


def _new_sop_class_coding(
    ctx: StudyContext, ds: dj.Dataset, cache: dict[str, JSON], where: str
) -> JSON | None:
    """Read (with warnings) and cache the sopClass coding of an instance: system
    urn:ietf:rfc:3986, code urn:oid:<SOP Class UID> (FHIR R4 ImagingStudy.series.instance)."""
    sop_class = dj.uid(ds, t.SOP_CLASS_UID, ctx.sink, where)
    if sop_class is None:
        ctx.sink.add(t.SOP_CLASS_UID, None, NO_SOP_CLASS, where)
        return None
    coding = {"system": RFC3986, "code": f"urn:oid:{sop_class}"}
    name = ctx.compiled.sop_class_names.get(sop_class) if ctx.compiled.displays else None
    if name is not None:
        coding["display"] = name
    cache[sop_class] = coding
    return coding


def _instances(ctx: StudyContext, series: SeriesData, where: str) -> list[JSON]:
    sink = ctx.sink
    titles = ctx.mapping.elements.instance_title
    sop_codings: dict[str, JSON] = {}
    out: list[JSON] = []
    for row in series.rows:
        if row.uid is None:
            continue
        ds = row.ds
        # hot loop: the SOP Class UID repeats across a series, so look it up in the cache
        # before any checking; unknown or unusable values take the slow, reporting path
        coding = None
        try:
            found = ds[t.SOP_CLASS_UID]["Value"]
            if type(found) is list and type(found[0]) is str:
                coding = sop_codings.get(found[0])
        except (KeyError, IndexError, TypeError):
            pass
        if coding is None:
            coding = _new_sop_class_coding(ctx, ds, sop_codings, where)
            if coding is None:
                continue
        instance: JSON = {"uid": row.uid, "sopClass": coding.copy()}
        number = row.number
        if number is not None:
            if number < 0:
                sink.add(t.INSTANCE_NUMBER, number, NEGATIVE, where)
            else:
                instance["number"] = number
        if titles and (t.CONCEPT_NAME_CODE_SEQUENCE in ds or t.DOCUMENT_TITLE in ds):
            title = None
            if t.CONCEPT_NAME_CODE_SEQUENCE in ds:
                title = codes.concept_meaning(ctx, ds, t.CONCEPT_NAME_CODE_SEQUENCE, where)
            if title is None and t.DOCUMENT_TITLE in ds:
                title = dj.text(ds, t.DOCUMENT_TITLE, "ST", sink, where)
            if title is not None:
                instance["title"] = title
        out.append(instance)
    return out


def series_element(ctx: StudyContext, series: SeriesData, *, with_instances: bool) -> JSON:
    """One ImagingStudy.series (FHIR R4), elements in the specification's order."""
    elements = ctx.mapping.elements
    ds, where, sink = series.ds, f"series {series.uid}", ctx.sink
    out: JSON = {"uid": series.uid}
    number = _unsigned(ctx, series.number, t.SERIES_NUMBER, where)
    if number is not None:
        out["number"] = number
    out["modality"] = codes.modality(ctx, dj.code_string(ds, t.MODALITY, sink, where), where)
    if elements.series_description:
        description = dj.text(ds, t.SERIES_DESCRIPTION, "LO", sink, where)
        if description is not None:
            out["description"] = description
    out["numberOfInstances"] = series.count
    if elements.series_body_site:
        site = codes.body_site(ctx, ds, where)
        if site is not None:
            out["bodySite"] = site
    if elements.series_laterality:
        image_sides = [
            side
            for row in series.rows
            if t.IMAGE_LATERALITY in row.ds
            and (side := dj.code_string(row.ds, t.IMAGE_LATERALITY, sink, where)) is not None
        ]
        side_coding = codes.laterality(
            ctx, dj.code_string(ds, t.LATERALITY, sink, where), image_sides, where
        )
        if side_coding is not None:
            out["laterality"] = side_coding
    if elements.series_started:
        started = ctx.started(ds, t.SERIES_DATE, t.SERIES_TIME, where)
        if started is not None:
            out["started"] = started
    if elements.series_performer:
        performers = _performers(ctx, ds, where)
        if performers:
            out["performer"] = performers
    if with_instances:
        listed = _instances(ctx, series, where)
        if listed:
            out["instance"] = listed
    return out
