"""MappingEngine: one study's DICOM JSON in, FHIR R4 resources and links out.

Pure and deterministic: no I/O after construction, no randomness, and the clock (read once
per study) only decides the ``future-date`` warning; the same input (in any instance order)
gives byte-identical canonical JSON.  Resources are built as plain
dicts straight from DICOM JSON (PS3.18 F.2): pydicom ``Dataset.from_json`` alone measured
about 3 ms per instance, two orders of magnitude over the whole mapping's ~10 µs, and
fhir.resources models would add as much again.  DICOM JSON is UTF-8, so nothing needs
decoding; Part-10 files are read with pydicom (:mod:`bridge.mapping.files`).  The tests
validate every produced resource with fhir.resources (R4B) and fhirclient (R4) instead.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from collections.abc import Mapping as AbcMapping
from typing import Any

from bridge.errors import DicomDataError
from bridge.mapping import canonical, identifiers
from bridge.mapping import dicom_json as dj
from bridge.mapping import tags as t
from bridge.mapping.context import Compiled, StudyContext
from bridge.mapping.grouping import collect
from bridge.mapping.model import Mapping
from bridge.mapping.result import EndpointSpec, MappingResult
from bridge.mapping.study import endpoint_resource, imaging_study
from bridge.mapping.tables import Tables, load_tables

_BASE_URL = re.compile(r"https?://[^\s]+")

DicomJson = AbcMapping[str, Any]


def utc_today() -> dt.date:
    """Today's date in UTC: the default clock of :class:`MappingEngine`."""
    return dt.datetime.now(dt.UTC).date()


def _study_uid(ctx: StudyContext, instances: Sequence[DicomJson], study: DicomJson | None) -> str:
    first = next((ds for ds in instances if type(ds) is dict), study)
    if type(first) is dict:
        found = dj.uid(first, t.STUDY_INSTANCE_UID, ctx.sink)
        if found is not None:
            return found
    raise DicomDataError(
        f"{t.label(t.STUDY_INSTANCE_UID)} is missing or not a valid UID",
        tag=t.label(t.STUDY_INSTANCE_UID),
    )


class MappingEngine:
    """Maps studies with one :class:`~bridge.mapping.model.Mapping`.

    Construction resolves the mapping against the standard tables (loaded once per
    directory and cached for the process); :meth:`map_study` is then pure but for one
    reading of ``today`` (UTC by default; injectable for tests), which only decides the
    ``future-date`` warning, never the resources.
    """

    def __init__(
        self,
        mapping: Mapping,
        *,
        tables: Tables | None = None,
        today: Callable[[], dt.date] = utc_today,
    ) -> None:
        self.mapping = mapping
        self.tables = tables if tables is not None else load_tables(mapping.tables_dir)
        self._compiled = Compiled.build(mapping, self.tables)
        self._today = today

    @staticmethod
    def canonical_json(resource: Any) -> bytes:
        """Sorted-key compact UTF-8 JSON: byte-identical for the same input."""
        return canonical.canonical_json(resource)

    @staticmethod
    def content_hash(resource: Any) -> str:
        """SHA-256 hex of :meth:`canonical_json`."""
        return canonical.content_hash(resource)

    def map_study(
        self,
        instances: Sequence[DicomJson],
        *,
        series: Sequence[DicomJson] | None = None,
        study: DicomJson | None = None,
        endpoint: EndpointSpec,
        patient_reference: str | None = None,
        service_request_references: dict[str, str] | None = None,
    ) -> MappingResult:
        """Map one study.

        ``instances`` are DICOM JSON datasets, one per instance, carrying study, series and
        instance attributes (WADO-RS metadata or QIDO-RS instance level with includefield);
        ``series`` QIDO-RS series-level records and ``study`` the study-level record add
        series and counts the instance list lacks.  ``patient_reference`` and
        ``service_request_references`` (``system|value`` -> ``ServiceRequest/id``) are what
        the sync resolved; without them subject and basedOn are logical references by
        identifier.

        Raises :class:`~bridge.errors.DicomDataError` (naming the tag) when the Study or a
        Series Instance UID is missing or invalid, or the PatientID is present but cannot
        be trusted to identify one patient (several values, blank, not LO, read under an
        unknown character set); every other problem is a warning in the result and the
        element is left out.
        """
        if not _BASE_URL.fullmatch(endpoint.address) or "/studies/" in endpoint.address:
            raise ValueError(f"endpoint address must be a WADO-RS base URL: {endpoint.address!r}")
        ctx = StudyContext(self._compiled, today=self._today())
        study_uid = _study_uid(ctx, instances, study)
        series_data = collect(ctx.sink, study_uid, instances, series or ())
        if type(study) is dict:
            record_uid = dj.uid(study, t.STUDY_INSTANCE_UID, ctx.sink)
            if record_uid is not None and record_uid != study_uid:
                raise DicomDataError(
                    "the study record is of another study than the instances",
                    tag=t.label(t.STUDY_INSTANCE_UID),
                )
        representative: dj.Dataset = next(
            (s.ds for s in series_data if s.rows), series_data[0].ds if series_data else {}
        )
        study_ds: dj.Dataset = representative
        if type(study) is dict:
            study_ds = {**study, **representative}
        ctx.read_offset(study_ds)

        patient = identifiers.patient_link(ctx, study_ds)
        orders = identifiers.order_groups(ctx, study_ds)
        listed = sum(len(s.rows) for s in series_data)
        section = self.mapping.instances
        with_instances = section.detail == "full" and listed <= section.max_instances_full
        resource = imaging_study(
            ctx,
            study_uid=study_uid,
            ds=study_ds,
            series=series_data,
            patient=patient,
            patient_reference=patient_reference,
            orders=orders,
            service_request_references=service_request_references,
            endpoint=endpoint,
            with_instances=with_instances,
        )
        return MappingResult(
            study_uid=study_uid,
            imaging_study=resource,
            endpoint=endpoint_resource(ctx, endpoint),
            patient=patient,
            service_requests=[link for group in orders for link in group],
            warnings=ctx.sink.result(),
            content_hash=canonical.content_hash(resource),
            instance_detail="full" if with_instances else "none",
        )
