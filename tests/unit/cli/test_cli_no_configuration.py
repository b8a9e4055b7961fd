"""``imaging-bridge`` without any configuration says so and which settings it needs, instead
of creating ``./bridge-state.db`` and showing empty tables (issue 20 item 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.state import open_store
from tests.unit.cli.cli_helpers import clear_bridge_env, write_config

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(root_logging: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_bridge_env(monkeypatch)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("command", [
    ["failures", "list"], ["failures", "show", "1.2.3"], ["failures", "retry", "--all"],
    ["warnings", "list"], ["warnings", "show", "1.2.3"], ["resync", "--all"],
    ["sync", "--once"], ["backfill"], ["reconcile"],
])
def test_without_any_configuration_a_command_names_the_settings_it_needs(
        command: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "no configuration" in message
    for needed in ("--config", "BRIDGE_CONFIG_FILE", "BRIDGE_ARCHIVE__BASE_URL",
                   "BRIDGE_FHIR__BASE_URL", "BRIDGE_STATE__URL", "docs/settings-reference.md"):
        assert needed in message, needed
    assert list(tmp_path.iterdir()) == [], "nothing may be created without configuration"


def test_an_environment_variable_alone_is_configuration(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).close()
    monkeypatch.setenv("BRIDGE_STATE__URL", url)
    result = runner.invoke(app, ["failures", "list"])
    assert result.exit_code == 0, result.output


def test_a_read_only_command_does_not_create_a_missing_state_store(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bridge.yaml", state=tmp_path / "missing.db")
    for command in (["failures", "list"], ["warnings", "list"], ["warnings", "show", "1.2"],
                    ["failures", "show", "1.2"], ["failures", "retry", "--all"],
                    ["resync", "--all"]):
        result = runner.invoke(app, [*command, "-c", str(config)])
        assert result.exit_code == 2, result.output
        message = " ".join(result.stderr.split())
        assert "no state store" in message and "missing.db" in message and "state.url" \
            in message, message
        assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize(("command", "said"), [
    (["failures", "list"], "failed studies: none"),
    (["warnings", "list"], "studies with mapping warnings: none"),
    (["warnings", "list", "--code", "invalid-date"], "studies with mapping warnings: none"),
])
def test_an_empty_list_says_none(command: list[str], said: str, tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'state.db'}").close()
    config = write_config(tmp_path / "bridge.yaml", state=tmp_path / "state.db")
    result = runner.invoke(app, [*command, "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == said


@pytest.mark.parametrize(("text", "problem"), [
    ("archives: [\n", "not valid YAML"),
    ("just a string\n", "not a mapping of settings sections"),
    ("- fhir\n", "not a mapping of settings sections"),
])
def test_a_config_file_that_is_no_yaml_mapping_is_a_configuration_error(
        text: str, problem: str, tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["failures", "list", "-c", str(config)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert message.startswith("configuration error:") and str(config) in message, message
    assert problem in message and "Traceback" not in result.output


@pytest.mark.parametrize("command", [
    ["failures", "list"], ["failures", "show", "1.2"], ["failures", "retry", "--all"],
    ["warnings", "list"], ["warnings", "show", "1.2"], ["resync", "--all"],
])
def test_a_state_store_that_does_not_answer_is_reported_not_a_traceback(
        command: list[str], tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    # nothing listens on port 1 of loopback: connection refused at once
    config.write_text('{"state": {"url": "postgresql+psycopg://nobody:x@127.0.0.1:1/none"}}',
                      encoding="utf-8")
    result = runner.invoke(app, [*command, "-c", str(config)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("state-unavailable: state database error"), result.stderr
