"""Benchmark of the analytics export's table building (issue 16): a script that prints
figures.

    .venv/bin/python tests/bench/bench_record_export.py [--studies 20000] [--out DIR]

No server: the FHIR resources are made here, as the sync and the record room write them
(the real mapping engine's ImagingStudy of a few generated studies, the dose mapping's
summary and event Observations, a text SR's DiagnosticReport), copied with distinct ids
up to ``--studies`` studies; then the rows of :mod:`bridge.record.tables` are built and
the four tables written (Parquet when pyarrow is installed, and CSV), and the example
queries of mappings/record/example_queries.sql run with DuckDB when installed.  Prints
resources/s of row building, of writing, and each query's time.  The issue's targets
(NDJSON -> Parquet >= 20,000 resources/s on one core; each example query < 1 s) are for
the export as a whole; the FHIR reads, which dominate against a server, are not in this
figure.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "mapping"))

from mapping_helpers import ENDPOINT, site_engine  # noqa: E402

from bridge.record.dose import map_dose_sr  # noqa: E402
from bridge.record.export import have_parquet, write_table  # noqa: E402
from bridge.record.report import map_report_sr  # noqa: E402
from bridge.record.rules import load_dose_rules  # noqa: E402
from bridge.record.tables import dose_row, report_row, series_rows, study_row  # noqa: E402
from samples.generator import generate_studies  # noqa: E402
from samples.rdsr import dose_sr  # noqa: E402
from samples.report_sr import text_report_sr  # noqa: E402


def _templates() -> list[list[dict[str, Any]]]:
    """A few studies' resources (ImagingStudy first), as written to the EHR."""
    engine = site_engine()
    out = []
    for n, study in enumerate(generate_studies(40, seed=16, profile="small")):
        resource = engine.map_study(study.to_dicom_json(), endpoint=ENDPOINT).imaging_study
        imaging = {**resource, "id": f"is{n}", "subject": {"reference": f"Patient/p{n}"}}
        ref, patient = {"reference": f"ImagingStudy/is{n}"}, imaging["subject"]
        resources = [imaging]
        made = dose_sr(study.truth, seed=1)
        if made is not None:
            resources += list(map_dose_sr(made[0].to_json_dict(), imaging_study=ref,
                                          patient=patient).resources)
        resources += list(map_report_sr(text_report_sr(study.truth, seed=1)[0].to_json_dict(),
                                        imaging_study=ref, patient=patient).resources)
        out.append(resources)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rules = load_dose_rules()
    templates = _templates()
    resources: list[dict[str, Any]] = []
    for n in range(args.studies):
        for k, resource in enumerate(templates[n % len(templates)]):
            copied = copy.copy(resource)
            copied["id"] = f"{resource.get('id', 'r')}-{n}-{k}"
            resources.append(copied)
    started = time.perf_counter()
    tables: dict[str, list[dict[str, Any]]] = {"studies": [], "series": [], "reports": [],
                                               "dose": []}
    for resource in resources:
        kind = resource["resourceType"]
        if kind == "ImagingStudy":
            tables["studies"].append(study_row(resource))
            tables["series"] += series_rows(resource)
        elif kind == "DiagnosticReport":
            if (row := report_row(resource)) is not None:
                tables["reports"].append(row)
        elif (row := dose_row(resource, rules)) is not None:
            tables["dose"].append(row)
    rows_s = time.perf_counter() - started
    print(f"{len(resources)} resources of {args.studies} studies -> "
          + ", ".join(f"{k} {len(v)}" for k, v in tables.items()))
    print(f"rows: {rows_s:.2f} s, {len(resources) / rows_s:,.0f} resources/s")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for parquet in ([True, False] if have_parquet() else [False]):
            started = time.perf_counter()
            for name, rows in tables.items():
                write_table(out, name, rows, parquet=parquet)
            took = time.perf_counter() - started
            print(f"write {'parquet' if parquet else 'csv'}: {took:.2f} s, "
                  f"{len(resources) / took:,.0f} resources/s; rows + write "
                  f"{len(resources) / (took + rows_s):,.0f} resources/s")
        try:
            import duckdb
        except ImportError:
            return
        db = duckdb.connect()
        for name in tables:
            db.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{out}/{name}.parquet')")
        text = (ROOT / "mappings" / "record" / "example_queries.sql").read_text()
        for part in text.split("-- name: ")[1:]:
            name, sql = part.split("\n", 1)
            started = time.perf_counter()
            rows = db.execute(sql).fetchall()
            print(f"query {name.strip()}: {(time.perf_counter() - started) * 1000:.0f} ms, "
                  f"{len(rows)} rows")


if __name__ == "__main__":
    main()
