"""``imaging-bridge mappings validate`` catches what a site file gets wrong, all in one run
(issue 20 item 6)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from bridge.cli_mapping import register

app = typer.Typer()
register(app)
runner = CliRunner()


def _validate(tmp_path: Path, text: str) -> tuple[int, str]:
    site = tmp_path / "site-b.yaml"
    site.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["mappings", "validate", str(site)])
    # rich wraps long lines: compare the report as one line
    return result.exit_code, " ".join(result.output.split())


def test_procedure_codes_under_an_undeclared_coding_scheme_are_refused(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, (
        "version: 1\n"
        "procedure_codes:\n"
        "  99HOSPB:\n"
        "    CTCHEST:\n"
        "      - system: http://loinc.org\n"
        "        code: 24627-2\n"
    ))
    assert code == 1, output
    assert "site-b.yaml:3 procedure_codes.99HOSPB: coding scheme '99HOSPB' is not declared" \
        in output


def test_a_declared_local_scheme_and_a_standard_one_are_accepted(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, (
        "coding_schemes:\n"
        "  99HOSPB: https://hospital-b.example.org/fhir/CodeSystem/procedure\n"
        "procedure_codes:\n"
        "  99HOSPB:\n"
        "    CTCHEST: [{system: 'http://loinc.org', code: 24627-2}]\n"
        "  LN:\n"
        "    24627-2: [{system: 'http://www.radlex.org', code: RPID16}]\n"
    ))
    assert code == 0, output
    assert "2 procedure codes" in output


def test_a_code_system_that_is_not_an_absolute_uri_is_refused(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, (
        "coding_schemes:\n"
        "  99HOSPB: https://hospital-b.example.org/fhir/CodeSystem/procedure\n"
        "procedure_codes:\n"
        "  99HOSPB:\n"
        "    CTCHEST:\n"
        "      - system: htp:/loinc\n"
        "        code: 24627-2\n"
    ))
    assert code == 1, output
    assert "site-b.yaml:6 procedure_codes.99HOSPB.CTCHEST[0].system: not a URI" in output
    assert "htp:/loinc" in output


def test_schema_errors_and_table_term_errors_are_reported_in_one_run(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, (
        "patient:\n"
        "  polcy: create\n"
        "procedure_codes:\n"
        "  99NOPE:\n"
        "    X1: [{system: 'http://loinc.org', code: 1-8}]\n"
        "body_parts:\n"
        "  Thorax: THORAXX\n"
    ))
    assert code == 1, output
    assert "site-b.yaml:2 patient.polcy: unknown key" in output
    assert "site-b.yaml:7 body_parts.Thorax: 'THORAXX' is not a Body Part Examined term" \
        in output
    assert "site-b.yaml:4 procedure_codes.99NOPE: coding scheme '99NOPE' is not declared" \
        in output
