"""``mappings doc`` documents the configured mapping, and ``mappings diff`` says how the
proposed file is combined with it (issue 20 item 4)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from mapping_helpers import DEFAULT_YAML, SITE_YAML
from test_mapping_docs_cli import _fake_archive
from typer.testing import CliRunner

from bridge.cli_mapping import register

app = typer.Typer()
register(app)
runner = CliRunner()


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def site_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings whose mapping.files are default.yaml + the site example, found the way the
    service finds them (BRIDGE_CONFIG_FILE)."""
    config = tmp_path / "bridge.yaml"
    config.write_text(json.dumps({"mapping": {"files": [str(DEFAULT_YAML), str(SITE_YAML)]}}))
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(config))
    monkeypatch.chdir(tmp_path)
    return config


def test_doc_documents_the_configured_site_mapping(site_config: Path, tmp_path: Path) -> None:
    output = tmp_path / "reference.md"
    result = runner.invoke(app, ["mappings", "doc", "--output", str(output)])
    assert result.exit_code == 0, result.output
    text = output.read_text(encoding="utf-8")
    assert "from mappings/default.yaml, mappings/site-example.yaml" in text
    assert "`99HOSPA` | `CTCHEST` | `http://loinc.org#24627-2` CT Chest" in text
    assert "**Europe/Berlin**" in text
    assert "default.yaml + " in _one_line(result.output)  # says what it documented


def test_doc_of_a_site_mapping_does_not_overwrite_the_product_reference(
    site_config: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["mappings", "doc"])
    assert result.exit_code == 0, result.output
    written = tmp_path / "mapping-reference.md"  # in the current directory
    assert "`99HOSPA` | `CTCHEST`" in written.read_text(encoding="utf-8")
    check = runner.invoke(app, ["mappings", "doc", "--check"])
    assert check.exit_code == 0, check.output


def test_diff_needs_an_explicit_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_archive(monkeypatch)
    result = runner.invoke(app, ["mappings", "diff", "--proposed", str(SITE_YAML)])
    assert result.exit_code == 2
    assert "--mode" in _one_line(result.output)


def test_diff_layer_mode_adds_the_proposed_file_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = _fake_archive(monkeypatch)
    result = runner.invoke(
        app, ["mappings", "diff", "--proposed", str(SITE_YAML), "--mode", "layer"])
    assert result.exit_code == 0, result.output
    output = _one_line(result.output)
    assert "mode layer: default.yaml + site-example.yaml" in output
    assert f"2 of {len(archive.instances)} studies would change" in output


def test_diff_replace_mode_swaps_the_file_of_the_same_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_archive(monkeypatch)
    proposed = tmp_path / "site-example.yaml"
    shutil.copy(SITE_YAML, proposed)
    result = runner.invoke(app, [
        "mappings", "diff", "--proposed", str(proposed), "--mode", "replace",
        "-m", str(DEFAULT_YAML), "-m", str(SITE_YAML)])
    assert result.exit_code == 0, result.output
    output = _one_line(result.output)
    assert "mode replace: default.yaml + site-example.yaml (in place of" in output
    assert "0 of 2 studies would change" in output  # the same content, replaced not layered


def test_diff_replace_mode_without_a_file_of_that_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_archive(monkeypatch)
    proposed = tmp_path / "site-b.yaml"
    shutil.copy(SITE_YAML, proposed)
    result = runner.invoke(app, [
        "mappings", "diff", "--proposed", str(proposed), "--mode", "replace"])
    assert result.exit_code == 2
    assert "no current mapping file is named site-b.yaml" in _one_line(result.output)
