"""The sample generator's vocabulary, kept as data: ``samples/catalogue/*.json``.

Names, sites and identifier systems, modalities and their Storage SOP Classes, procedures with
their codes and series, and the odd body-part values come from the JSON files next to this
module; ``README.md`` there names where each value comes from.  This module reads them once,
checks that they fit together and hands them out as typed, immutable tables.

The order of every list and object in the files is part of the generator's output: a seeded
draw picks by position, so reordering entries changes the generated studies (the digests
pinned in ``tests/unit/test_samples_generator_pinned.py`` then fail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ACCESSION_SYSTEMS",
    "CATALOGUE",
    "DEFAULT_ACCESSION_SYSTEM",
    "DEFAULT_PATIENT_SYSTEM",
    "FILLER_ORDER_SYSTEM",
    "LOCAL_PROCEDURE_SYSTEM",
    "PATIENT_ID_SYSTEMS",
    "PLACER_ORDER_SYSTEM",
    "SOP_CLASS_BY_MODALITY",
    "Catalogue",
    "CatalogueError",
    "Procedure",
    "Site",
    "load_catalogue",
]

_HERE = Path(__file__).resolve().parent


class CatalogueError(ValueError):
    """A catalogue file is missing a value, has a value of the wrong type, or refers to an
    entry that does not exist (the message names the file and the entry)."""


@dataclass(frozen=True)
class Procedure:
    """A requested procedure: local ``99HOSPA`` code, what it images and how it is drawn."""

    code: str
    meaning: str
    modality: str
    #: BodyPartExamined defined term (PS3.16 Annex L, CID 4031)
    body_part: str
    #: a paired organ: the study gets a Laterality
    paired: bool
    #: SeriesDescription of each series, in acquisition order
    series: tuple[str, ...]
    #: relative weight among the procedures of its modality
    weight: int
    #: LOINC (code, display) of the procedure, if any
    loinc: tuple[str, str] | None
    #: SNOMED CT (code, meaning) reasons for the procedure
    reasons: tuple[tuple[str, str], ...]
    #: free-text reasons (ReasonForTheRequestedProcedure)
    reason_texts: tuple[str, ...]


@dataclass(frozen=True)
class Site:
    """A hospital: the IssuerOfPatientID value, its institution and its identifier systems."""

    issuer: str
    institution: str
    departments: tuple[str, ...]
    patient_id_system: str
    accession_issuer: str
    accession_system: str
    #: TimezoneOffsetFromUTC in the daylight-saving season and outside it
    summer_offset: str
    winter_offset: str


@dataclass(frozen=True)
class Catalogue:
    """Every table of the catalogue, as read from the JSON files."""

    procedures: tuple[Procedure, ...]
    #: CID 4031 term -> local or malformed values sometimes sent instead
    odd_body_parts: dict[str, tuple[str, ...]]
    sop_class_by_modality: dict[str, str]
    station_by_modality: dict[str, str]
    model_by_modality: dict[str, str]
    #: modality -> relative weight of a study's modality draw, in draw order
    modality_weights: dict[str, int]
    #: ViewPosition -> SNOMED CT (code, meaning) for ViewCodeSequence (CID 4014)
    mammography_views: dict[str, tuple[str, str]]
    ascii_family: tuple[str, ...]
    ascii_given: dict[str, tuple[str, ...]]
    middle_initials: str
    latin1_family: tuple[str, ...]
    latin1_given: dict[str, tuple[str, ...]]
    #: complete PN values (alphabetic[=ideographic[=phonetic]]) and the sex they fit
    utf8_names: tuple[tuple[str, str], ...]
    referring: tuple[str, ...]
    reading: tuple[str, ...]
    operators: tuple[str, ...]
    performing: tuple[str, ...]
    sites: dict[str, Site]
    default_patient_system: str
    default_accession_system: str
    placer_order_system: str
    filler_order_system: str
    local_procedure_system: str


# --- reading ---------------------------------------------------------------------------------


def _read(directory: Path, name: str) -> dict[str, Any]:
    path = directory / name
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"{path}: cannot read the catalogue file ({exc})") from exc
    if not isinstance(data, dict):
        raise CatalogueError(f"{path}: expected a JSON object")
    return data


def _get(data: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(data, dict):
        raise CatalogueError(f"{where}: expected an object, not {data!r}")
    if key not in data:
        raise CatalogueError(f"{where}: missing {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogueError(f"{where}: {key!r} must be of type {kind.__name__}, not {value!r}")
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _get(data, key, list, where)
    if not all(isinstance(v, str) for v in values):
        raise CatalogueError(f"{where}: {key!r} must be a list of strings")
    return tuple(values)


def _string_map(data: dict[str, Any], key: str, where: str) -> dict[str, str]:
    values = _get(data, key, dict, where)
    if not all(isinstance(v, str) for v in values.values()):
        raise CatalogueError(f"{where}: {key!r} must map to strings")
    return dict(values)


def _by_sex(data: dict[str, Any], key: str, where: str) -> dict[str, tuple[str, ...]]:
    given = _get(data, key, dict, where)
    out = {sex: _strings(given, sex, f"{where} {key}") for sex in ("F", "M")}
    if set(given) != {"F", "M"}:
        raise CatalogueError(f"{where}: {key!r} must have exactly the keys 'F' and 'M'")
    return out


def _procedure(item: Any, reasons: dict[str, str], where: str) -> Procedure:
    if not isinstance(item, dict):
        raise CatalogueError(f"{where}: expected an object, not {item!r}")
    where = f"{where} {item.get('code', '?')}"
    loinc = item.get("loinc")
    if loinc is not None:
        loinc = (_get(loinc, "code", str, where), _get(loinc, "display", str, where))
    reason_codes = _strings(item, "reasons", where)
    unknown = [code for code in reason_codes if code not in reasons]
    if unknown:
        raise CatalogueError(f"{where}: reasons {unknown} are not in 'reasons'")
    return Procedure(
        code=_get(item, "code", str, where),
        meaning=_get(item, "meaning", str, where),
        modality=_get(item, "modality", str, where),
        body_part=_get(item, "body_part", str, where),
        paired=_get(item, "paired", bool, where),
        series=_strings(item, "series", where),
        weight=_get(item, "weight", int, where),
        loinc=loinc,
        reasons=tuple((code, reasons[code]) for code in reason_codes),
        reason_texts=_strings(item, "reason_texts", where),
    )


def _site(issuer: str, item: Any, where: str) -> Site:
    if not isinstance(item, dict):
        raise CatalogueError(f"{where}: expected an object, not {item!r}")
    where = f"{where} {issuer}"
    offsets = _string_map(item, "timezone_offset", where)
    return Site(
        issuer=issuer,
        institution=_get(item, "institution", str, where),
        departments=_strings(item, "departments", where),
        patient_id_system=_get(item, "patient_id_system", str, where),
        accession_issuer=_get(item, "accession_issuer", str, where),
        accession_system=_get(item, "accession_system", str, where),
        summer_offset=_get(offsets, "summer", str, f"{where} timezone_offset"),
        winter_offset=_get(offsets, "winter", str, f"{where} timezone_offset"),
    )


def load_catalogue(directory: Path = _HERE) -> Catalogue:
    """Read and cross-check the catalogue files in ``directory``.

    :raises CatalogueError: a file is unreadable, a value is missing or mistyped, or an
        entry refers to one that does not exist (a procedure's modality without a SOP Class,
        its body part without odd values, a reason code not listed).
    """
    procedures_file = _read(directory, "procedures.json")
    body_parts = _read(directory, "body_parts.json")
    modalities_file = _read(directory, "modalities.json")
    names = _read(directory, "names.json")
    sites_file = _read(directory, "sites.json")

    reasons = _string_map(procedures_file, "reasons", "procedures.json")
    procedures = tuple(
        _procedure(item, reasons, "procedures.json")
        for item in _get(procedures_file, "procedures", list, "procedures.json")
    )
    odd_body_parts = {
        term: _strings(body_parts, term, "body_parts.json") for term in body_parts
    }
    modalities = _get(modalities_file, "modalities", dict, "modalities.json")
    modality = {
        key: {
            field: _get(_get(modalities, key, dict, "modalities.json"), field, str,
                        f"modalities.json {key}")
            for field in ("sop_class_uid", "station_name", "model_name")
        }
        for key in modalities
    }
    weights = _get(modalities_file, "draw_weights", dict, "modalities.json")
    modality_weights = {key: _get(weights, key, int, "modalities.json draw_weights")
                        for key in weights}
    views = _get(modalities_file, "mammography_views", dict, "modalities.json")
    mammography_views = {
        key: (_get(value, "code", str, f"modalities.json {key}"),
              _get(value, "meaning", str, f"modalities.json {key}"))
        for key, value in views.items()
    }
    patients = _get(names, "patients", dict, "names.json")
    ascii_names = _get(patients, "ascii", dict, "names.json patients")
    latin1_names = _get(patients, "latin1", dict, "names.json patients")
    utf8_names = tuple(
        (_get(item, "name", str, "names.json utf8"), _get(item, "sex", str, "names.json utf8"))
        for item in _get(patients, "utf8", list, "names.json patients")
    )
    staff = _get(names, "staff", dict, "names.json")
    sites = {
        issuer: _site(issuer, item, "sites.json")
        for issuer, item in _get(sites_file, "sites", dict, "sites.json").items()
    }

    if set(modality_weights) != set(modality):
        raise CatalogueError("modalities.json: draw_weights must name every modality once")
    for proc in procedures:
        if proc.modality not in modality:
            raise CatalogueError(f"procedures.json {proc.code}: unknown modality {proc.modality}")
        if proc.body_part not in odd_body_parts:
            raise CatalogueError(
                f"procedures.json {proc.code}: body part {proc.body_part} has no entry in "
                "body_parts.json"
            )

    return Catalogue(
        procedures=procedures,
        odd_body_parts=odd_body_parts,
        sop_class_by_modality={k: v["sop_class_uid"] for k, v in modality.items()},
        station_by_modality={k: v["station_name"] for k, v in modality.items()},
        model_by_modality={k: v["model_name"] for k, v in modality.items()},
        modality_weights=modality_weights,
        mammography_views=mammography_views,
        ascii_family=_strings(ascii_names, "family", "names.json ascii"),
        ascii_given=_by_sex(ascii_names, "given", "names.json ascii"),
        middle_initials=_get(ascii_names, "middle_initials", str, "names.json ascii"),
        latin1_family=_strings(latin1_names, "family", "names.json latin1"),
        latin1_given=_by_sex(latin1_names, "given", "names.json latin1"),
        utf8_names=utf8_names,
        referring=_strings(staff, "referring", "names.json staff"),
        reading=_strings(staff, "reading", "names.json staff"),
        operators=_strings(staff, "operators", "names.json staff"),
        performing=_strings(staff, "performing", "names.json staff"),
        sites=sites,
        default_patient_system=_get(sites_file, "default_patient_system", str, "sites.json"),
        default_accession_system=_get(sites_file, "default_accession_system", str, "sites.json"),
        placer_order_system=_get(sites_file, "placer_order_system", str, "sites.json"),
        filler_order_system=_get(sites_file, "filler_order_system", str, "sites.json"),
        local_procedure_system=_get(sites_file, "local_procedure_system", str, "sites.json"),
    )


CATALOGUE: Catalogue = load_catalogue()

# --- identifier systems (shared conventions of the project) -------------------------------

#: IssuerOfPatientID (0010,0021) -> FHIR Identifier.system
PATIENT_ID_SYSTEMS: dict[str, str] = {
    site.issuer: site.patient_id_system for site in CATALOGUE.sites.values()
}
DEFAULT_PATIENT_SYSTEM = CATALOGUE.default_patient_system
#: IssuerOfAccessionNumberSequence > LocalNamespaceEntityID -> FHIR Identifier.system
ACCESSION_SYSTEMS: dict[str, str] = {
    site.accession_issuer: site.accession_system for site in CATALOGUE.sites.values()
}
DEFAULT_ACCESSION_SYSTEM = CATALOGUE.default_accession_system
PLACER_ORDER_SYSTEM = CATALOGUE.placer_order_system
FILLER_ORDER_SYSTEM = CATALOGUE.filler_order_system
#: FHIR system used by the sample EHR for the local ``99HOSPA`` procedure codes
LOCAL_PROCEDURE_SYSTEM = CATALOGUE.local_procedure_system
#: Storage SOP Classes (PS3.4 Annex B.5)
SOP_CLASS_BY_MODALITY: dict[str, str] = CATALOGUE.sop_class_by_modality
