"""The settings reference (docs/settings-reference.md) is generated from the settings models,
is up to date, and documents every key with a type, default, variable and description
(issue 20 item 13)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from bridge.cli import app
from bridge.config import Settings, load_settings
from bridge.settings_reference import (
    DEFAULT_OUTPUT,
    FALLBACK,
    REPO_ROOT,
    SHARED,
    _comments,
    _model_of,
    render_reference,
)

runner = CliRunner()


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        annotation: Any = field.annotation
        inner = _model_of(annotation.__args__[0] if getattr(annotation, "__origin__", None)
                          is list else annotation)
        if inner is not None:
            yield from _models(inner, seen)


MODELS = [m for m in _models(Settings, set()) if m is not Settings]


def test_the_committed_reference_is_up_to_date() -> None:
    assert DEFAULT_OUTPUT == REPO_ROOT / "docs" / "settings-reference.md"
    assert DEFAULT_OUTPUT.read_text(encoding="utf-8") == render_reference(), (
        "docs/settings-reference.md is stale: run `imaging-bridge settings doc`")


def test_every_key_is_documented_with_a_description() -> None:
    text = render_reference()
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[5].strip()
            for line in text.splitlines() if line.startswith("| `")}
    for model in MODELS:
        for name in model.model_fields:
            keys = [k for k in rows if k == name or k.endswith(f".{name}")]
            assert keys, f"{model.__name__}.{name} is not in the reference"
            assert all(rows[k] for k in keys), f"{model.__name__}.{name} has no description"
    for section in Settings.model_fields:
        assert f"## `{section}`" in text


def test_the_fallback_descriptions_hold_only_keys_the_models_leave_undescribed() -> None:
    comments = _comments()
    fields = {(m.__name__, n): f for m in MODELS for n, f in m.model_fields.items()}
    for key in FALLBACK:
        assert key in fields, f"{key} is no setting any more: drop it from FALLBACK"
        assert not fields[key].description and key not in comments, (
            f"{key} is described in bridge/config.py now: drop it from FALLBACK")
    assert set(SHARED) <= set(MODELS)


@pytest.mark.parametrize(("variable", "value", "path", "expected"), [
    ("BRIDGE_SYNC__POLL_INTERVAL", "7.5", ("sync", "poll_interval"), 7.5),
    ("BRIDGE_API__ADMIN_PORT", "8401", ("api", "admin_port"), 8401),
    ("BRIDGE_FHIR__AUTH__KIND", "bearer", ("fhir", "auth", "token"), "x" * 20),
    ("BRIDGE_SMART__EXTRA_SCOPES", '["launch/patient"]', ("smart", "extra_scopes"),
     ["launch/patient"]),
    ("BRIDGE_REALTIME__ORTHANC_CHANGES__URL", "http://orthanc:8042",
     ("realtime", "orthanc_changes", "url"), "http://orthanc:8042"),
])
def test_documented_variables_set_their_keys(variable: str, value: str, path: tuple[str, ...],
                                             expected: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert f"`{variable}`" in render_reference()
    for name in list(os.environ):
        if name.startswith("BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("BRIDGE_FHIR__AUTH__TOKEN", "x" * 20)
    node: Any = load_settings()
    for part in path:
        node = getattr(node, part)
    if hasattr(node, "get_secret_value"):
        node = node.get_secret_value()
    assert node == expected


def test_settings_doc_writes_and_checks_the_reference(tmp_path: Path) -> None:
    assert runner.invoke(app, ["settings", "doc", "--check"]).exit_code == 0
    stale = tmp_path / "ref.md"
    stale.write_text("old\n", encoding="utf-8")
    result = runner.invoke(app, ["settings", "doc", "--check", "--output", str(stale)])
    assert result.exit_code == 1 and "out of date" in result.stderr
    assert runner.invoke(app, ["settings", "doc", "--output", str(stale)]).exit_code == 0
    assert stale.read_text(encoding="utf-8") == render_reference()
