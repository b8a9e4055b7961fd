"""``imaging-bridge warnings list|show`` on a state store holding recorded mapping warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.state import StudyWarning, open_store

A = "arc"
BODY = StudyWarning(code="unknown-body-part", tag="(0018,0015) BodyPartExamined",
                    message="unknown body part", where="series 1.1.9", value="ELBOWX")
DATE = StudyWarning(code="invalid-date", tag="(0008,0020) StudyDate",
                    message="not a valid date (DA, PS3.5 6.2)")

runner = CliRunner()


@pytest.fixture(autouse=True)
def _logging(root_logging: None) -> None:
    """Every test here runs the CLI (tests/conftest.py: root_logging)."""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose store holds 1.1 (two warnings), 1.2 (one) and 1.3 (none)."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    try:
        for uid, warnings in (("1.1", [BODY, DATE]), ("1.2", [DATE]), ("1.3", [])):
            store.mark_due(A, uid, reason="poll")
            (claimed,) = store.claim(worker="w", limit=1, lease_seconds=60)
            assert store.complete(A, uid, worker="w", claimed_seq=claimed.claimed_seq,
                                  fingerprint=None, content_hash="h", fhir_id=f"is-{uid}",
                                  fhir_version="1", action="create", warnings=warnings)
    finally:
        store.close()
    path = tmp_path / "bridge.yaml"
    path.write_text(json.dumps({
        "archives": [{"name": A, "base_url": "http://archive.invalid/dicom-web"}],
        "fhir": {"base_url": "http://fhir.invalid/fhir"},
        "state": {"url": url},
    }))
    return path


def test_list_counts_studies_per_code_and_filters_by_code(config: Path) -> None:
    result = runner.invoke(app, ["warnings", "list", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["counts"] == {"invalid-date": 2, "unknown-body-part": 1}
    assert {s["study_uid"] for s in body["studies"]} == {"1.1", "1.2"}
    first = next(s for s in body["studies"] if s["study_uid"] == "1.1")
    assert (first["status"], first["warnings"], first["codes"]) == (
        "synced", 2, ["invalid-date", "unknown-body-part"])

    result = runner.invoke(app, ["warnings", "list", "-c", str(config), "--json",
                                 "--code", "unknown-body-part"])
    assert [s["study_uid"] for s in json.loads(result.stdout)["studies"]] == ["1.1"]

    result = runner.invoke(app, ["warnings", "list", "-c", str(config), "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "Studies per warning code" in result.stdout and "unknown-body-part" in result.stdout


def test_list_refuses_an_unknown_code_naming_the_known_ones(config: Path) -> None:
    result = runner.invoke(app, ["warnings", "list", "-c", str(config), "--code", "elbow"])
    assert result.exit_code == 2
    assert "unknown-body-part" in result.output


def test_show_prints_a_study_s_warnings_and_fails_for_an_unknown_study(config: Path) -> None:
    result = runner.invoke(app, ["warnings", "show", "1.1", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["code"], r["tag"], r["where"], r["value"]) for r in rows] == [
        ("unknown-body-part", "(0018,0015) BodyPartExamined", "series 1.1.9", "ELBOWX"),
        ("invalid-date", "(0008,0020) StudyDate", None, None),
    ]

    result = runner.invoke(app, ["warnings", "show", "1.1", "-c", str(config)])
    assert result.exit_code == 0 and "ELBOWX" in result.stdout

    result = runner.invoke(app, ["warnings", "show", "1.3", "-c", str(config)])
    assert result.exit_code == 0 and result.stdout == "mapping warnings of 1.3: none\n"

    result = runner.invoke(app, ["warnings", "show", "9.9", "-c", str(config)])
    assert result.exit_code == 1 and "not known" in result.output
