"""A misspelt key is refused by name at every level of the settings, from the YAML file
and from ``BRIDGE_*`` variables alike (issue 20 item 3: only top-level keys were)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import Settings, StrictModel, load_settings, unknown_env_sections
from bridge.errors import ConfigError

_BASE = "archives: [{name: main, base_url: 'http://pacs.test/dicom-web'}]\n"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("BRIDGE_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("yaml_text", "named"), [
    ("sync: {pol_interval: 3}\n", "sync.pol_interval"),
    ("gateway: {viewer_token_secrett: abc}\n", "gateway.viewer_token_secrett"),
    ("smart: {iss_alowlist: ['https://ehr.test/fhir']}\n", "smart.iss_alowlist"),
    ("fhir: {auth: {kind: basic, usernme: x}}\n", "fhir.auth.usernme"),
    ("realtime: {orthanc_changes: {url: 'http://o.test', intervall: 2}}\n",
     "realtime.orthanc_changes.intervall"),
])
def test_a_misspelt_nested_key_in_the_file_is_refused_by_its_path(
    yaml_text: str, named: str, tmp_path: Path
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(_BASE + yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert named in str(err.value)


def test_a_misspelt_nested_env_var_is_refused_by_its_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(_BASE)
    monkeypatch.setenv("BRIDGE_SYNC__POL_INTERVAL", "3")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "sync.pol_interval" in str(err.value)


def test_an_env_var_of_an_unknown_section_is_refused_by_its_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(_BASE)
    monkeypatch.setenv("BRIDGE_SYNCC__POLL_INTERVAL", "3")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "BRIDGE_SYNCC__POLL_INTERVAL" in str(err.value)


def test_tool_variables_without_a_section_are_not_settings() -> None:
    assert unknown_env_sections({"BRIDGE_TEST_STACK": "x", "BRIDGE_HAPI_JAR": "y",
                                 "BRIDGE_CONFIG_FILE": "z", "BRIDGE_SYNC__POLL_INTERVAL": "1",
                                 "OTHER__X": "1"}) == []


def test_every_settings_section_forbids_unknown_keys() -> None:
    """A new section that forgot the strict base would silently accept typos again."""
    seen: set[type] = set()

    def walk(model: type) -> None:
        if model in seen:
            return
        seen.add(model)
        assert issubclass(model, StrictModel) or model is Settings, model
        for field in model.model_fields.values():  # type: ignore[attr-defined]
            for arg in _types(field.annotation):
                if isinstance(arg, type) and hasattr(arg, "model_fields"):
                    walk(arg)

    walk(Settings)
    assert len(seen) > 10


def _types(annotation: object) -> list[object]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [t for a in args for t in _types(a)]


def test_a_config_file_given_to_one_load_is_not_left_for_the_next(tmp_path: Path) -> None:
    """load_settings(path) used to write BRIDGE_CONFIG_FILE into the process environment,
    so every later load in the process read that file too."""
    import os

    path = tmp_path / "bridge.yaml"
    path.write_text(_BASE + "sync: {poll_interval: 7}\n")
    assert load_settings(path).sync.poll_interval == 7
    assert "BRIDGE_CONFIG_FILE" not in os.environ
    assert load_settings().sync.poll_interval != 7
