"""Lookups compiled once per engine, and the per-study state of a mapping run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bridge.mapping import datetimes as dts
from bridge.mapping import dicom_json as dj
from bridge.mapping import tags as t
from bridge.mapping.model import Mapping
from bridge.mapping.sink import WarningSink
from bridge.mapping.tables import Tables, Term

DCM = "http://dicom.nema.org/resources/ontology/DCM"
RFC3986 = "urn:ietf:rfc:3986"

JSON = dict[str, Any]


def term_coding(term: Term, with_display: bool) -> JSON:
    """A FHIR Coding for a table term."""
    coding: JSON = {"system": term.system, "code": term.code}
    if with_display:
        coding["display"] = term.display
    return coding


@dataclass(frozen=True, slots=True)
class Compiled:
    """The mapping and tables turned into the dicts the hot path looks things up in."""

    mapping: Mapping
    tables: Tables
    zone: ZoneInfo | None
    displays: bool
    schemes: dict[str, str]
    procedure_maps: dict[tuple[str, str], list[JSON]]
    body_parts: dict[str, Term]
    modalities: dict[str, JSON]
    acquisition: frozenset[str]
    laterality: dict[str, JSON]
    sop_class_names: dict[str, str]
    patient_issuers: dict[str, str]
    accession_issuers: dict[str, str]
    #: Endpoint.payloadType as JSON (dumped once, not per study)
    payload_types: list[JSON]

    @classmethod
    def build(cls, mapping: Mapping, tables: Tables) -> Compiled:
        """Resolve the mapping against the tables (site entries win over standard ones)."""
        displays = mapping.elements.displays
        body_parts = {key.upper(): term for key, term in tables.body_parts.items()}
        for local, target in mapping.body_parts.items():
            body_parts[local.strip().upper()] = tables.body_parts[target.upper()]
        modalities: dict[str, JSON] = {}
        for code, term in tables.modalities.items():
            coding: JSON = {"system": DCM, "code": code}
            if displays:
                coding["display"] = term.display
            modalities[code] = coding
        return cls(
            mapping=mapping,
            tables=tables,
            zone=ZoneInfo(mapping.timezone) if mapping.timezone else None,
            displays=displays,
            schemes={**tables.coding_schemes, **mapping.coding_schemes},
            procedure_maps={
                (scheme, code): [c.model_dump(exclude_none=True) for c in codings]
                for scheme, codes in mapping.procedure_codes.items()
                for code, codings in codes.items()
            },
            body_parts=body_parts,
            modalities=modalities,
            acquisition=frozenset(c for c, m in tables.modalities.items() if m.acquisition),
            laterality={k: term_coding(v, displays) for k, v in tables.laterality.items()},
            sop_class_names=dict(tables.sop_classes),
            patient_issuers={k: v.system for k, v in mapping.patient.issuers.items()},
            accession_issuers={k: v.system for k, v in mapping.accession.issuers.items()},
            payload_types=[
                {"coding": [coding.model_dump(exclude_none=True)]}
                for coding in mapping.endpoint.payload_type
            ],
        )


@dataclass(slots=True)
class StudyContext:
    """State of one map_study call: the compiled lookups, the warnings, the study's zone."""

    compiled: Compiled
    sink: WarningSink = field(default_factory=WarningSink)
    #: TimezoneOffsetFromUTC (0008,0201) of the study in minutes, when valid
    offset: int | None = None
    #: today's date (UTC) from the engine's clock, to tell a future acquisition date
    today: dt.date | None = None

    @property
    def mapping(self) -> Mapping:
        """The mapping in force."""
        return self.compiled.mapping

    def read_offset(self, ds: dj.Dataset) -> None:
        """Read the study's TimezoneOffsetFromUTC (PS3.3 C.12.1.1.8)."""
        raw = dj.text(ds, t.TIMEZONE_OFFSET_FROM_UTC, "SH", self.sink)
        if raw is not None:
            self.offset, problem = dts.parse_offset(raw)
            if problem is not None:
                self.sink.add(t.TIMEZONE_OFFSET_FROM_UTC, raw, problem)

    def started(
        self, ds: dj.Dataset, date_tag: str, time_tag: str, where: str | None = None
    ) -> str | None:
        """FHIR dateTime from a DA + TM pair and the study's zone (rules in datetimes).

        A date before 1895 is left out, a future one kept, both with a warning.
        """
        raw_date = dj.text(ds, date_tag, "DA", self.sink, where)
        if raw_date is None:
            return None
        date, problem = dts.parse_date(raw_date)
        if problem is not None:
            self.sink.add(date_tag, raw_date, problem, where)
        if date is None:
            return None
        problem = dts.acquisition_problem(date, self.today)
        if problem is not None:
            self.sink.add(date_tag, raw_date, problem, where)
            if problem is dts.IMPLAUSIBLE_DATE:
                return None
        raw_time = dj.text(ds, time_tag, "TM", self.sink, where)
        if raw_time is None or not date.full:
            return date.text
        time, problem = dts.parse_time(raw_time)
        if time is None or problem is not None:
            self.sink.add(time_tag, raw_time, problem or dts.BAD_TIME, where)
            return date.text
        if time.minute is None:
            self.sink.add(time_tag, raw_time, dts.HOUR_ONLY, where)
            return date.text
        offset = self.offset
        if offset is None and self.compiled.zone is not None:
            offset = dts.zone_offset(date, time, self.compiled.zone)
        if offset is None:
            self.sink.add(t.TIMEZONE_OFFSET_FROM_UTC, None, dts.NO_ZONE)
            return date.text
        return dts.fhir_datetime(date, time, offset)
