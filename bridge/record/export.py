"""``imaging-bridge export``: the imaging record as flat tables for analytics.

With ``--bulk`` the resources come from a FHIR Bulk Data export (:func:`export_bulk`,
NDJSON streamed row by row); otherwise it reads the FHIR server by paged searches (R4
3.1.1; ``_count`` per page, following ``Bundle.link[next]``): every ImagingStudy, the
DiagnosticReports and the dose Observations (LOINC 73569-6 summaries and DCM 113852
irradiation events), optionally only of some patients (``subject=``) or changed since a
date (``_lastUpdated=ge``).  It writes the tables of :mod:`bridge.record.tables` to a
directory: Parquet when pyarrow is installed (``pip install
imaging-fhir-bridge[analytics]``), else CSV.  Each table is written to a hidden temporary
file and renamed into place (POSIX rename is atomic), so a reader never sees half a table
and an interrupted export leaves the previous tables as they were.  Rows are written in
batches (:mod:`bridge.record.sink`): memory does not grow with the record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bridge.fhir.client import FhirClient, Resource
from bridge.record.bulk import BulkExportClient
from bridge.record.rules import DoseRules
from bridge.record.sink import TableSink
from bridge.record.tables import TABLES, Row, dose_row, study_row
from bridge.record.views import View, load_views

__all__ = ["BULK_TYPES", "ExportResult", "RecordTables", "export_bulk", "export_tables",
           "have_parquet", "write_table"]

#: the dose Observations' codes (summary, irradiation event)
DOSE_CODES = "http://loinc.org|73569-6,http://dicom.nema.org/resources/ontology/DCM|113852"
PAGE = 500
#: the tables computed in code (bridge.record.tables), not by a ViewDefinition
COMPUTED = ("studies", "dose")


def have_parquet() -> bool:
    """Whether pyarrow is installed (Parquet output)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class ExportResult:
    """Rows per table and the files written."""

    rows: dict[str, int]
    files: list[Path]


def _params(patients: Sequence[str], since: date | None, extra: list[tuple[str, str]]
            ) -> list[tuple[str, str]]:
    params = [("_count", str(PAGE)), *extra]
    if patients:
        params.append(("subject", ",".join(patients)))
    if since is not None:
        params.append(("_lastUpdated", f"ge{since.isoformat()}"))
    return params


async def _each(fhir: FhirClient, resource_type: str, params: list[tuple[str, str]]
                ) -> AsyncIterator[Resource]:
    async for resource in fhir.search_all(resource_type, params):
        if resource.get("resourceType") == resource_type:
            yield resource


def write_table(directory: Path, name: str, rows: list[Row], *, parquet: bool) -> Path:
    """Write one whole table (columns of :data:`TABLES`) as ``name.parquet`` or
    ``name.csv``: a temporary file renamed into place."""
    sink = TableSink(directory, name, TABLES[name], parquet=parquet)
    for row in rows:
        sink.add(row)
    return sink.close()


class RecordTables:
    """The tables of one export, open for rows, written in batches (:class:`TableSink`).

    The SQL-on-FHIR ViewDefinitions (``views``, default mappings/record/views: series,
    reports, patients) each make a table from their resource type; ``studies`` (the
    study-level body-site vote) and ``dose`` (units converted by the dose rules) are
    computed by :mod:`bridge.record.tables`, unless a view of that name replaces them.
    """

    def __init__(self, directory: Path, *, rules: DoseRules, parquet: bool,
                 views: Mapping[str, View] | None = None) -> None:
        self.rules = rules
        self.views = dict(load_views() if views is None else views)
        directory.mkdir(parents=True, exist_ok=True)
        columns = {name: TABLES[name] for name in COMPUTED if name not in self.views}
        columns.update({name: view.columns for name, view in self.views.items()})
        order = [n for n in TABLES if n in columns] + sorted(set(columns) - set(TABLES))
        self.sinks = {name: TableSink(directory, name, columns[name], parquet=parquet)
                      for name in order}
        self._by_type: dict[str, list[View]] = {}
        for view in self.views.values():
            self._by_type.setdefault(view.resource, []).append(view)

    def add(self, resource: Resource) -> None:
        kind = resource.get("resourceType")
        if kind == "ImagingStudy" and "studies" not in self.views:
            self.sinks["studies"].add(study_row(resource))
        elif kind == "Observation" and "dose" not in self.views and \
                (dose := dose_row(resource, self.rules)) is not None:
            self.sinks["dose"].add(dose)
        for view in self._by_type.get(str(kind), ()):
            sink = self.sinks[view.name]
            for row in view.rows(resource):
                sink.add(row)

    def close(self) -> ExportResult:
        files = [sink.close() for sink in self.sinks.values()]
        return ExportResult({name: sink.rows for name, sink in self.sinks.items()}, files)

    def abort(self) -> None:
        for sink in self.sinks.values():
            sink.abort()


async def export_tables(fhir: FhirClient, directory: Path, *, rules: DoseRules,
                        patients: Sequence[str] = (), since: date | None = None,
                        parquet: bool | None = None,
                        views: Mapping[str, View] | None = None) -> ExportResult:
    """Read the record from ``fhir`` by paged searches and write the tables into
    ``directory`` (created).

    :param patients: only these patients' resources (``Patient/<id>`` references).
    :param since: only resources changed on or after this day.
    :param parquet: Parquet (default when pyarrow is installed) or CSV.
    """
    tables = RecordTables(directory, rules=rules, views=views,
                          parquet=have_parquet() if parquet is None else parquet)
    try:
        for resource_type, extra in (("ImagingStudy", []), ("DiagnosticReport", []),
                                     ("Observation", [("code", DOSE_CODES)])):
            async for resource in _each(fhir, resource_type,
                                        _params(patients, since, extra)):
                tables.add(resource)
        ids = [p.removeprefix("Patient/") for p in patients]
        patient_params = [("_count", str(PAGE))] + ([("_id", ",".join(ids))] if ids else [])
        if since is not None:
            patient_params.append(("_lastUpdated", f"ge{since.isoformat()}"))
        async for resource in _each(fhir, "Patient", patient_params):
            tables.add(resource)
    except BaseException:
        tables.abort()
        raise
    return tables.close()


#: the resource types a bulk export asks for (Bulk Data IG ``_type``)
BULK_TYPES = ("ImagingStudy", "DiagnosticReport", "Observation", "Patient")


async def export_bulk(bulk: BulkExportClient, directory: Path, *, rules: DoseRules,
                      patients: Sequence[str] = (), since: date | None = None,
                      parquet: bool | None = None,
                      progress: Callable[[str], None] | None = None,
                      views: Mapping[str, View] | None = None) -> ExportResult:
    """Write the tables from a FHIR Bulk Data export (:mod:`bridge.record.bulk`):
    kick-off (system level, or ``Patient/$export`` for ``patients``; Observations only of
    the dose codes by ``_typeFilter``), polling, every NDJSON file streamed into the
    tables, the export deleted on the server when done (or cancelled on failure)."""
    tables = RecordTables(directory, rules=rules, views=views,
                          parquet=have_parquet() if parquet is None else parquet)
    status_url: str | None = None
    try:
        status_url = await bulk.kick_off(
            types=BULK_TYPES, type_filters=[f"Observation?code={DOSE_CODES}"],
            patients=patients, since=since)
        manifest = await bulk.wait(status_url, progress=progress)
        for file in manifest.files:
            async for resource in bulk.resources(manifest, file):
                tables.add(resource)
    except BaseException:
        tables.abort()
        raise
    finally:
        if status_url is not None:
            await bulk.delete(status_url)
    return tables.close()
