"""Generate docs/mapping-reference.md from the mapping YAML and the standard tables.

The reference is never written by hand (DICOM Cast's hand-written mapping doc drifted from its
code): ``imaging-bridge mappings doc`` renders it, and a unit test fails when the committed
file differs from what the current YAML, tables and this element list give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from bridge.mapping import tags as t
from bridge.mapping.model import Mapping
from bridge.mapping.problems import WARNING_CODES
from bridge.mapping.tables import Tables

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DOC = REPO_ROOT / "docs" / "mapping-reference.md"
_TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True, slots=True)
class Row:
    """One FHIR element, the DICOM attributes it comes from, the rule, and its switch."""

    element: str
    tags: tuple[str, ...]
    rule: str
    switch: str | None = None


#: FHIR R4 ImagingStudy elements in specification order (STANDARDS.md table).
IMAGING_STUDY: tuple[Row, ...] = (
    Row("identifier", (t.STUDY_INSTANCE_UID,), "`urn:dicom:uid` system, value `urn:oid:<uid>`"),
    Row(
        "identifier",
        (t.ACCESSION_NUMBER, t.ISSUER_OF_ACCESSION_NUMBER_SEQUENCE),
        "typed v2-0203 `ACSN`; system by issuer (see Identifier systems)",
    ),
    Row("identifier", (t.STUDY_ID,), "`use: secondary`, system `study_id.system`", "study_id.emit"),
    Row("status", (), "the mapping's `status`"),
    Row(
        "modality",
        (t.MODALITY, t.MODALITIES_IN_STUDY),
        "acquisition modalities (CID 29) among all series and ModalitiesInStudy, sorted, "
        "system DCM",
    ),
    Row(
        "subject",
        (t.PATIENT_ID, t.ISSUER_OF_PATIENT_ID, t.ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE),
        "the Patient the sync resolved, else a logical reference by identifier",
    ),
    Row(
        "started",
        (t.STUDY_DATE, t.STUDY_TIME, t.TIMEZONE_OFFSET_FROM_UTC),
        "see Dates and times",
    ),
    Row(
        "basedOn",
        (
            t.ACCESSION_NUMBER,
            t.PLACER_ORDER_NUMBER,
            t.FILLER_ORDER_NUMBER,
            t.REQUEST_ATTRIBUTES_SEQUENCE,
            t.REFERENCED_REQUEST_SEQUENCE,
        ),
        "one reference per order: resolved by the sync, else logical by identifier "
        "(ACSN before PLAC before FILL)",
    ),
    Row("referrer", (t.REFERRING_PHYSICIAN_NAME,), "display `Given Family`", "elements.referrer"),
    Row(
        "interpreter",
        (t.NAME_OF_PHYSICIANS_READING_STUDY,),
        "one display `Given Family` per name",
        "elements.interpreter",
    ),
    Row(
        "endpoint",
        (),
        "the archive's Endpoint (address: its WADO-RS base); with the gateway on, the "
        "gateway's (requires-access-token) then the `ihe-iid` one; resolved by the sync, "
        "else logical by identifier",
    ),
    Row(
        "numberOfSeries",
        (t.NUMBER_OF_STUDY_RELATED_SERIES,),
        "series seen, or the archive's count when larger",
    ),
    Row(
        "numberOfInstances",
        (t.NUMBER_OF_STUDY_RELATED_INSTANCES,),
        "sum of the series counts, or the archive's count when larger",
    ),
    Row(
        "procedureCode",
        (t.PROCEDURE_CODE_SEQUENCE,),
        "one concept per item: codings from `procedure_codes`, then the original; text = "
        "CodeMeaning; unknown scheme: text only",
        "elements.procedure_code",
    ),
    Row(
        "location",
        (t.INSTITUTIONAL_DEPARTMENT_NAME, t.PERFORMED_LOCATION),
        "display (the department, else the performed location)",
        "elements.location",
    ),
    Row(
        "reasonCode",
        (
            t.REASON_FOR_PERFORMED_PROCEDURE_CODE_SEQUENCE,
            t.REASON_FOR_REQUESTED_PROCEDURE_CODE_SEQUENCE,
            t.REASON_FOR_THE_REQUESTED_PROCEDURE,
        ),
        "coded reasons, then the free-text reason as text",
        "elements.reason_code",
    ),
    Row("description", (t.STUDY_DESCRIPTION,), "as is", "elements.description"),
    Row("series.uid", (t.SERIES_INSTANCE_UID,), "required: missing or invalid is a data error"),
    Row("series.number", (t.SERIES_NUMBER,), "left out when negative (unsignedInt)"),
    Row(
        "series.modality",
        (t.MODALITY,),
        "DCM coding (CID 33); `OT` with a warning when absent or unknown (1..1 in R4)",
    ),
    Row(
        "series.description",
        (t.SERIES_DESCRIPTION,),
        "as is",
        "elements.series_description",
    ),
    Row(
        "series.numberOfInstances",
        (t.NUMBER_OF_SERIES_RELATED_INSTANCES,),
        "instances seen, or the archive's count when larger",
    ),
    Row(
        "series.bodySite",
        (t.BODY_PART_EXAMINED,),
        "`body_parts` site map, then tables/body_parts.json (Annex L) -> SNOMED CT",
        "elements.series_body_site",
    ),
    Row(
        "series.laterality",
        (t.LATERALITY, t.IMAGE_LATERALITY),
        "L/R/B -> SNOMED CT; from the instances' ImageLaterality when the series has none "
        "(L and R together -> B); U -> none",
        "elements.series_laterality",
    ),
    Row(
        "series.started",
        (t.SERIES_DATE, t.SERIES_TIME),
        "see Dates and times",
        "elements.series_started",
    ),
    Row(
        "series.performer",
        (t.PERFORMING_PHYSICIAN_NAME, t.OPERATORS_NAME),
        "function v3-ParticipationType `PRF` (performing physician) / `SPRF` (operator); "
        "actor display `Given Family`",
        "elements.series_performer",
    ),
    Row("series.instance.uid", (t.SOP_INSTANCE_UID,), "instances without one are counted only"),
    Row(
        "series.instance.sopClass",
        (t.SOP_CLASS_UID,),
        "system `urn:ietf:rfc:3986`, code `urn:oid:<uid>`, display from tables/sop_classes.json",
    ),
    Row("series.instance.number", (t.INSTANCE_NUMBER,), "left out when negative"),
    Row(
        "series.instance.title",
        (t.CONCEPT_NAME_CODE_SEQUENCE, t.DOCUMENT_TITLE),
        "CodeMeaning of the concept name, else the document title",
        "elements.instance_title",
    ),
)

#: Patient resource for the ``create`` policy.
PATIENT: tuple[Row, ...] = (
    Row("identifier", (t.PATIENT_ID, t.ISSUER_OF_PATIENT_ID), "typed v2-0203 `MR`"),
    Row(
        "name",
        (t.PATIENT_NAME,),
        "one HumanName per component group; Ideographic/Phonetic marked IDE/SYL "
        "(iso21090-EN-representation)",
    ),
    Row("birthDate", (t.PATIENT_BIRTH_DATE,), "FHIR date (reduced precision kept)"),
    Row("gender", (t.PATIENT_SEX,), "M male, F female, O other"),
)


def _switch(mapping: Mapping, path: str | None) -> str:
    if path is None:
        return "always"
    value: Any = mapping
    for part in path.split("."):
        value = getattr(value, part)
    return "on" if value else "off"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _relative(path: str) -> str:
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return Path(path).name


def render_reference(mapping: Mapping, tables: Tables) -> str:
    """The mapping reference as Markdown (deterministic: no dates, sorted tables)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = _cell
    env.filters["label"] = t.label

    def rows(source: tuple[Row, ...]) -> list[dict[str, str]]:
        return [
            {
                "element": row.element,
                "tags": "<br>".join(t.label(tag) for tag in row.tags) or "—",
                "rule": row.rule,
                "switch": _switch(mapping, row.switch),
            }
            for row in source
        ]

    return env.get_template("mapping_reference.md.j2").render(
        mapping=mapping,
        sources=[_relative(s) for s in mapping.sources],
        tables=tables,
        study_rows=rows(IMAGING_STUDY),
        patient_rows=rows(PATIENT),
        warning_codes=list(WARNING_CODES.values()),
    )
