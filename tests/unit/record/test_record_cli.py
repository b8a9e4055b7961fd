"""``imaging-bridge record``: preview of a Part 10 file, status of the record tasks,
enqueue and retry."""

from __future__ import annotations

import json
from pathlib import Path

from record_golden_cases import _study
from typer.testing import CliRunner

from bridge.cli import app
from bridge.state import open_store
from bridge.state.tasks import RECORD_MAP
from samples.rdsr import ct_dose_sr
from samples.sr_content import part10
from tests.support.settings import bridge_config, save_config, sqlite_url

runner = CliRunner()


def _config(tmp_path: Path) -> Path:
    return save_config(tmp_path / "bridge.yaml", bridge_config(
        archives=[{"name": "pacs", "base_url": "http://archive.test/dw"}],
        fhir_url="http://ehr.test/fhir", state_url=sqlite_url(tmp_path),
        record={"enabled": True}))


def test_preview_of_a_dose_sr_file_shows_its_observations_and_warnings(tmp_path: Path) -> None:
    ds, truth = ct_dose_sr(_study("CT").truth, seed=1)
    path = tmp_path / "rdsr.dcm"
    path.write_bytes(part10(ds))
    result = runner.invoke(app, ["record", "preview", str(path)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [r["resourceType"] for r in body["resources"]] == \
        ["Observation"] * (1 + len(truth.events))
    assert body["resources"][0]["partOf"] == [{"reference": "ImagingStudy/preview"}]
    assert body["warnings"] == []


def test_preview_of_a_file_that_is_no_record_says_so(tmp_path: Path) -> None:
    image = next(iter(_study("CT").instances()))
    path = tmp_path / "image.dcm"
    path.write_bytes(part10(image))
    result = runner.invoke(app, ["record", "preview", str(path)])
    assert result.exit_code == 2
    assert "is no report SR, dose SR or encapsulated PDF" in result.output


def test_status_counts_tasks_and_names_failures_and_warnings(tmp_path: Path) -> None:
    config = _config(tmp_path)
    open_store(sqlite_url(tmp_path)).close()  # as a first sync leaves it
    assert runner.invoke(app, ["record", "enqueue", "1.2.3", "1.2.4", "1.2.5",
                               "--config", str(config)]).exit_code == 0
    store = open_store(sqlite_url(tmp_path))
    try:
        warned, failed = store.claim_tasks(RECORD_MAP, limit=2, worker="w", lease_seconds=60)
        store.complete_task(warned, worker="w", result={
            "written": ["Observation/1/_history/1"], "warning_count": 1,
            "warnings": [{"code": "dose-unit-missing", "item": "x", "message": "m"}]})
        store.fail_task(failed, worker="w", error="FhirRejected: no")
    finally:
        store.close()
    result = runner.invoke(app, ["record", "status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "record enabled: due 1, leased 0, done 1, failed 1" in result.output
    assert f"failed {failed.key} (attempts 1): FhirRejected: no" in result.output
    assert "1 resources written by the last run of 1 studies; 1 with warnings" in result.output
    assert f"warned {warned.key}: dose-unit-missing" in result.output
    result = runner.invoke(app, ["record", "retry", "--config", str(config)])
    assert "1 failed record tasks due again" in result.output
