"""Coded values: code sequence items, procedure and reason codes, modality, body site,
laterality (FHIR R4 ImagingStudy procedureCode, reasonCode, modality, series.bodySite,
series.laterality)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bridge.mapping import dicom_json as dj
from bridge.mapping import tags as t
from bridge.mapping.context import RFC3986, StudyContext
from bridge.mapping.problems import Problem

JSON = dict[str, Any]

UNKNOWN_BODY_PART = Problem(
    "unknown-body-part",
    "unknown body part: not a Body Part Examined term (PS3.16 Annex L) nor in the "
    "mapping's body_parts; series.bodySite left out",
)
UNKNOWN_MODALITY = Problem(
    "unknown-modality",
    "not a Modality defined term (PS3.16 CID 33): series.modality set to OT",
)
MISSING_MODALITY = Problem(
    "missing-modality", "absent (Type 1, PS3.3 C.7.3.1): series.modality set to OT"
)
UNKNOWN_LATERALITY = Problem(
    "unknown-laterality", "not L, R, B or U (PS3.3 C.7.3.1): series.laterality left out"
)
UNKNOWN_SCHEME = Problem(
    "unknown-coding-scheme",
    "unknown coding scheme designator: code kept as text only "
    "(add it to the mapping's coding_schemes)",
)
NO_SCHEME = Problem(
    "code-without-scheme", "code without CodingSchemeDesignator: kept as text only"
)


def _code_item(ctx: StudyContext, item: dj.Dataset, tag: str, where: str | None) -> JSON | None:
    """One code sequence item (PS3.3 8.8 Code Sequence Macro) as a CodeableConcept."""
    sink = ctx.sink
    meaning = dj.text(item, t.CODE_MEANING, "LO", sink, where)
    value = dj.text(item, t.CODE_VALUE, "SH", sink, where) or dj.text(
        item, t.LONG_CODE_VALUE, "UC", sink, where
    )
    scheme = dj.text(item, t.CODING_SCHEME_DESIGNATOR, "SH", sink, where)
    codings: list[JSON] = []
    if value is not None and scheme is not None:
        codings.extend(ctx.compiled.procedure_maps.get((scheme, value), ()))
        system = ctx.compiled.schemes.get(scheme)
        if system is None:
            sink.add(t.CODING_SCHEME_DESIGNATOR, scheme, UNKNOWN_SCHEME, where)
        else:
            coding: JSON = {"system": system, "code": value}
            if meaning is not None:
                coding["display"] = meaning
            codings.append(coding)
    else:
        urn = dj.text(item, t.URN_CODE_VALUE, "UR", sink, where)
        if urn is not None:
            coding = {"system": RFC3986, "code": urn}
            if meaning is not None:
                coding["display"] = meaning
            codings.append(coding)
        elif value is not None:
            sink.add(tag, value, NO_SCHEME, where)
    concept: JSON = {}
    if codings:
        concept["coding"] = codings
    if meaning is not None:
        concept["text"] = meaning
    return concept or None


def _unique(concepts: Iterable[JSON | None]) -> list[JSON]:
    out: list[JSON] = []
    for concept in concepts:
        if concept is not None and concept not in out:
            out.append(concept)
    return out


def procedure_codes(ctx: StudyContext, ds: dj.Dataset) -> list[JSON]:
    """ImagingStudy.procedureCode from ProcedureCodeSequence (0008,1032), with the mapping's
    codes for local procedure codes placed before the original coding."""
    tag = t.PROCEDURE_CODE_SEQUENCE
    return _unique(_code_item(ctx, item, tag, None) for item in dj.items(ds, tag, ctx.sink))


def reason_codes(ctx: StudyContext, ds: dj.Dataset) -> list[JSON]:
    """ImagingStudy.reasonCode: coded reasons (0040,1012) then (0040,100A), then the
    ReasonForTheRequestedProcedure (0040,1002) text."""
    concepts: list[JSON | None] = []
    for tag in (
        t.REASON_FOR_PERFORMED_PROCEDURE_CODE_SEQUENCE,
        t.REASON_FOR_REQUESTED_PROCEDURE_CODE_SEQUENCE,
    ):
        concepts.extend(_code_item(ctx, item, tag, None) for item in dj.items(ds, tag, ctx.sink))
    reason = dj.text(ds, t.REASON_FOR_THE_REQUESTED_PROCEDURE, "LO", ctx.sink)
    if reason is not None and not any(c and c.get("text") == reason for c in concepts):
        concepts.append({"text": reason})
    return _unique(concepts)


def concept_meaning(ctx: StudyContext, ds: dj.Dataset, tag: str, where: str | None) -> str | None:
    """CodeMeaning of the first item of a code sequence (ConceptNameCodeSequence)."""
    for item in dj.items(ds, tag, ctx.sink, where):
        return dj.text(item, t.CODE_MEANING, "LO", ctx.sink, where)
    return None


def modality(ctx: StudyContext, code: str | None, where: str | None) -> JSON:
    """series.modality (1..1 in R4): a DCM coding from CID 33; OT when absent or unknown."""
    modalities = ctx.compiled.modalities
    if code is None:
        ctx.sink.add(t.MODALITY, None, MISSING_MODALITY, where)
        return dict(modalities["OT"])
    found = modalities.get(code)
    if found is None:
        ctx.sink.add(t.MODALITY, code, UNKNOWN_MODALITY, where)
        return dict(modalities["OT"])
    return dict(found)


def study_modalities(ctx: StudyContext, codes: Iterable[str]) -> list[JSON]:
    """ImagingStudy.modality: the acquisition modalities (CID 29) among ``codes``, sorted.

    FHIR R4 defines ImagingStudy.modality as the series modalities "that are actual
    acquisition modalities, i.e. those in the DICOM Context Group 29"; SR, KO, PR... stay on
    their series only.
    """
    acquisition = ctx.compiled.acquisition
    chosen = sorted({code for code in codes if code in acquisition})
    return [dict(ctx.compiled.modalities[code]) for code in chosen]


def body_site(ctx: StudyContext, ds: dj.Dataset, where: str | None) -> JSON | None:
    """series.bodySite from BodyPartExamined (0018,0015) via the site map and PS3.16 Annex L."""
    raw = dj.text(ds, t.BODY_PART_EXAMINED, "CS", ctx.sink, where)
    if raw is None:
        return None
    term = ctx.compiled.body_parts.get(raw.upper())
    if term is None:
        ctx.sink.add(t.BODY_PART_EXAMINED, raw, UNKNOWN_BODY_PART, where)
        return None
    coding: JSON = {"system": term.system, "code": term.code}
    if ctx.compiled.displays:
        coding["display"] = term.display
    return coding


def laterality(
    ctx: StudyContext, series_value: str | None, image_values: Iterable[str], where: str | None
) -> JSON | None:
    """series.laterality from Laterality (0020,0060), else the ImageLaterality (0020,0062) of
    its instances: one side -> that side, both L and R (or B) -> B; U (unpaired) -> none."""
    table = ctx.compiled.laterality
    if series_value is not None:
        if series_value in table:
            return dict(table[series_value])
        if series_value != "U":
            ctx.sink.add(t.LATERALITY, series_value, UNKNOWN_LATERALITY, where)
        return None
    sides: set[str] = set()
    for value in image_values:
        if value in ("L", "R"):
            sides.add(value)
        elif value == "B":
            sides.update(("L", "R"))
        elif value != "U":
            ctx.sink.add(t.IMAGE_LATERALITY, value, UNKNOWN_LATERALITY, where)
    if not sides:
        return None
    side = sides.pop() if len(sides) == 1 else "B"
    return dict(table[side])
