"""docker/compose.yaml cannot run here (no Docker engine): check it statically instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bridge.config import Settings, load_settings, unknown_env_sections

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


#: values docker compose would take from a filled-in .env: each long enough for the
#: settings' minimum secret lengths, URLs where the settings want URLs
_ENV_VALUES = {"EHR_FHIR_URL": "http://ehr.example.org/fhir",
               "EHR_INTROSPECTION_URL": "http://ehr.example.org/introspect"}


def _substitute(value: str) -> str:
    # ${VAR:?message} -> a dummy value, ${VAR:-default} -> the default, as docker compose
    # would with .env filled in
    def one(m: re.Match[str]) -> str:
        name, rest = m.group(1), m.group(2) or ""
        if rest.startswith(":-"):
            return rest[2:]
        return _ENV_VALUES.get(name, f"dummy-{name.lower()}-0123456789abcdef0123456789")
    return re.sub(r"\$\{(\w+)(:[?-][^}]*)?\}", one, value)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of docker/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [(m.group(1).upper(), m.group(2).strip())
            for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, flags=re.M)
            if not m.group(0).lstrip().startswith("#")]


def _field_exists(path: list[str]) -> bool:
    model: type[BaseModel] = Settings
    for i, part in enumerate(path):
        fields = {name.upper(): f for name, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return False
        ann = field.annotation
        inner = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)
                 and issubclass(a, BaseModel)]
        if i < len(path) - 1:
            if not inner:
                return False
            model = inner[0]
    return True


def test_compose_has_the_four_services_of_the_local_stack() -> None:
    assert set(_compose()["services"]) == {"orthanc", "hapi", "postgres", "bridge"}


def _all_bridge_variables() -> dict[str, str]:
    """Every BRIDGE_ variable anywhere in compose (any service) and in the Dockerfile."""
    found: dict[str, str] = {}
    for service in _compose()["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("BRIDGE_"):
                found[key] = str(value)
    for instruction, args in _dockerfile_instructions():
        if instruction == "ENV":
            for key, value in re.findall(r"(BRIDGE_\w+)=('[^']*'|\S+)", args):
                found[key] = value.strip("'")
    return found


def test_every_bridge_variable_names_a_real_setting() -> None:
    env = _all_bridge_variables()
    assert unknown_env_sections(env) == []
    bad = [k for k in env if not _field_exists(k.removeprefix("BRIDGE_").split("__"))]
    assert bad == []


def test_field_check_refuses_a_misspelt_nested_key() -> None:
    # the check above is only as good as _field_exists: it must see below the section
    assert _field_exists(["GATEWAY", "VIEWER_TOKEN_SECRET"])
    assert not _field_exists(["GATEWAY", "VIEWER_TOKEN_SECRE"])
    assert not _field_exists(["SYNCC", "WORKERS"])
    assert unknown_env_sections({"BRIDGE_SYNCC__WORKERS": "2"}) == ["BRIDGE_SYNCC__WORKERS"]


def test_bridge_environment_validates_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("BRIDGE_"):
            monkeypatch.delenv(key)
    env = _compose()["services"]["bridge"]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, _substitute(str(value)))
    settings = load_settings()
    assert settings.archives[0].base_url == "http://orthanc:8042/dicom-web"
    assert settings.archives[0].auth.kind.value == "basic"
    assert settings.fhir.base_url == "http://hapi:8080/fhir"
    assert settings.state.url.startswith("postgresql+psycopg://")


def test_bridge_runs_the_demo_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gateway (with IID), SMART app, STOW proxy, signed notifications, Orthanc's changes
    feed and password-protected admin routes, as docker/local/demo.py configures them."""
    for key in list(__import__("os").environ):
        if key.startswith("BRIDGE_"):
            monkeypatch.delenv(key)
    for key, value in _all_bridge_variables().items():
        monkeypatch.setenv(key, _substitute(value))
    settings = load_settings()
    assert settings.gateway.enabled and settings.gateway.iid_enabled
    assert settings.gateway.introspection_url == "http://ehr.example.org/introspect"
    assert settings.smart.enabled
    assert settings.smart.iss_allowlist == ["http://ehr.example.org/fhir"]
    assert settings.realtime.webhook_secret is not None
    assert settings.realtime.stow_auth.bearer_tokens
    assert settings.realtime.orthanc_changes is not None
    assert settings.realtime.orthanc_changes.archive == settings.archives[0].name
    assert settings.api.admin_auth != "none"
    assert not isinstance(settings.api.admin_auth, str)
    assert "admin" in settings.api.admin_auth.basic_users
    assert settings.log.json_output
    for path in settings.mapping.files:
        # the image holds mappings/ at /app/mappings
        assert (ROOT / Path(path).relative_to("/app")).is_file(), path


def test_orthanc_runs_the_notifier_pointed_at_the_bridge() -> None:
    orthanc = _compose()["services"]["orthanc"]
    env = orthanc["environment"]
    scripts = __import__("json").loads(env["ORTHANC__LUA_SCRIPTS"])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in orthanc["volumes"] if ":" in v}
    for script in scripts:
        assert script in mounts, script
        assert (COMPOSE.parent / mounts[script]).resolve() == ROOT / "docker/orthanc/notifier.lua"
    bridge = _compose()["services"]["bridge"]["environment"]
    assert env["ORTHANC__IMAGING_BRIDGE__URL"] == (
        f"http://bridge:{bridge['BRIDGE_API__PORT']}/notifications")
    # the same secret on both sides, from the environment
    assert env["ORTHANC__IMAGING_BRIDGE__SECRET"] == bridge["BRIDGE_REALTIME__WEBHOOK_SECRET"]
    assert env["ORTHANC__IMAGING_BRIDGE__SECRET"].startswith("${")
    assert env["ORTHANC__IMAGING_BRIDGE__ARCHIVE"] == bridge["BRIDGE_ARCHIVE__NAME"]


def test_every_compose_variable_is_in_env_example() -> None:
    example = (ROOT / "docker" / ".env.example").read_text()
    named = set(re.findall(r"^(\w+)=", example, flags=re.M))
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required - named == set()


def test_orthanc_service_matches_the_local_dicomweb_setup() -> None:
    env = _compose()["services"]["orthanc"]["environment"]
    assert env["ORTHANC__DICOM_WEB__ROOT"] == "/dicom-web/"
    assert env["ORTHANC__AUTHENTICATION_ENABLED"] == "true"
    archive_url = _compose()["services"]["bridge"]["environment"]["BRIDGE_ARCHIVE__BASE_URL"]
    assert archive_url.endswith(env["ORTHANC__DICOM_WEB__ROOT"].rstrip("/"))


def test_dockerfile_copies_only_paths_that_exist() -> None:
    for instruction, args in _dockerfile_instructions():
        if instruction == "COPY" and not args.startswith("--from="):
            for part in args.split()[:-1]:
                assert (ROOT / part).exists(), part


def test_dockerfile_is_multi_stage_with_a_slim_runtime() -> None:
    stages = [args for instruction, args in _dockerfile_instructions() if instruction == "FROM"]
    assert len(stages) >= 2, stages
    assert "slim" in stages[-1] or "alpine" in stages[-1] or "distroless" in stages[-1]
    first = stages[0].split()[-1]
    # the runtime takes the build stage's output, not the sources' build tools
    copies = [a for i, a in _dockerfile_instructions() if i == "COPY"]
    assert any(a.startswith(f"--from={first} ") for a in copies), copies


def _runtime_stage() -> list[tuple[str, str]]:
    steps = _dockerfile_instructions()
    last_from = max(i for i, (instruction, _) in enumerate(steps) if instruction == "FROM")
    return steps[last_from:]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for instruction, args in _runtime_stage() if instruction == "USER"]
    assert users, "no USER in the runtime stage"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_healthcheck_asks_healthz_on_the_api_port() -> None:
    checks = [args for instruction, args in _runtime_stage() if instruction == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/healthz" in checks[0] and "NONE" not in checks[0].split()
    port = _compose()["services"]["bridge"]["environment"]["BRIDGE_API__PORT"]
    assert f":{port}/healthz" in checks[0]


def test_dockerfile_cmd_is_the_console_script() -> None:
    import json
    import tomllib
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    steps = _runtime_stage()
    cmd = [json.loads(args) for instruction, args in steps if instruction == "CMD"]
    entry = [json.loads(args) for instruction, args in steps if instruction == "ENTRYPOINT"]
    command = (entry[-1] if entry else []) + (cmd[-1] if cmd else [])
    assert command[:2] == ["imaging-bridge", "serve"]
    assert "imaging-bridge" in scripts


def test_dockerfile_bakes_in_no_secret() -> None:
    for instruction, args in _dockerfile_instructions():
        if instruction in ("ENV", "ARG"):
            assert not re.search(r"(?i)(password|secret|token)", args), args
    # the build context (the repository root) leaves docker/.env and local state out
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "**/.env" in ignored and ".venv" in ignored and ".run" in ignored


def test_secrets_are_not_hard_coded() -> None:
    text = COMPOSE.read_text()
    assert "PASSWORD: ${" in text
    assert not re.search(r"PASSWORD:\s*['\"]?[A-Za-z0-9]{4,}['\"]?\s*$", text, flags=re.M)
