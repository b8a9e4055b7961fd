"""``imaging-bridge export``: the imaging record as flat tables for analytics.

Reads the FHIR server by paged searches (R4 3.1.1; ``_count`` per page, following
``Bundle.link[next]``): every ImagingStudy, the DiagnosticReports and the dose Observations
(LOINC 73569-6 summaries and DCM 113852 irradiation events), optionally only of some
patients (``subject=``) or changed since a date (``_lastUpdated=ge``), and writes the
tables of :mod:`bridge.record.tables` to a directory: Parquet when pyarrow is installed
(``pip install imaging-fhir-bridge[analytics]``), else CSV.  Each table is written to a
hidden temporary file and renamed into place (POSIX rename is atomic), so a reader never
sees half a table and an interrupted export leaves the previous tables as they were.
"""

from __future__ import annotations

import csv
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bridge.fhir.client import FhirClient, Resource
from bridge.record.rules import DoseRules
from bridge.record.tables import TABLES, Row, dose_row, report_row, series_rows, study_row

__all__ = ["ExportResult", "export_tables", "have_parquet", "write_table"]

#: the dose Observations' codes (summary, irradiation event)
DOSE_CODES = "http://loinc.org|73569-6,http://dicom.nema.org/resources/ontology/DCM|113852"
PAGE = 500


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


def _pyarrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}[kind]


def write_table(directory: Path, name: str, rows: list[Row], *, parquet: bool) -> Path:
    """Write one table (columns of :data:`TABLES`) as ``name.parquet`` or ``name.csv``:
    a temporary file renamed into place."""
    columns = TABLES[name]
    final = directory / f"{name}.{'parquet' if parquet else 'csv'}"
    temporary = directory / f".{final.name}.partial"
    if parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(column, _pyarrow_type(kind)) for column, kind in columns])
        table = pa.Table.from_pylist([{c: row.get(c) for c, _ in columns} for row in rows],
                                     schema=schema)
        pq.write_table(table, temporary)
    else:
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=[c for c, _ in columns],
                                    extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    os.replace(temporary, final)
    return final


async def export_tables(fhir: FhirClient, directory: Path, *, rules: DoseRules,
                        patients: Sequence[str] = (), since: date | None = None,
                        parquet: bool | None = None) -> ExportResult:
    """Read the record from ``fhir`` and write the tables into ``directory`` (created).

    :param patients: only these patients' resources (``Patient/<id>`` references).
    :param since: only resources changed on or after this day.
    :param parquet: Parquet (default when pyarrow is installed) or CSV.
    """
    parquet = have_parquet() if parquet is None else parquet
    directory.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list[Row]] = {name: [] for name in TABLES}
    async for study in _each(fhir, "ImagingStudy", _params(patients, since, [])):
        tables["studies"].append(study_row(study))
        tables["series"] += series_rows(study)
    async for report in _each(fhir, "DiagnosticReport", _params(patients, since, [])):
        if (row := report_row(report)) is not None:
            tables["reports"].append(row)
    async for observation in _each(fhir, "Observation",
                                   _params(patients, since, [("code", DOSE_CODES)])):
        if (row := dose_row(observation, rules)) is not None:
            tables["dose"].append(row)
    files = [write_table(directory, name, rows, parquet=parquet)
             for name, rows in tables.items()]
    return ExportResult({name: len(rows) for name, rows in tables.items()}, files)
