"""Typed settings, validated at start-up.

Sources, highest precedence first: ``BRIDGE_*`` environment variables (nested keys with
``__``, e.g. ``BRIDGE_FHIR__BASE_URL``), then the YAML file named by ``BRIDGE_CONFIG_FILE``
(or passed to :func:`load_settings`), then the defaults below.  Each component receives only
its own sub-settings.  Unsafe values (placeholder secrets, plain-http remote endpoints with
credentials) are refused here, before anything connects anywhere.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from bridge.errors import ConfigError

REPO_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"

_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "xxx", "todo"}


class AuthKind(StrEnum):
    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"
    CLIENT_CREDENTIALS = "client_credentials"
    SMART_BACKEND = "smart_backend"


class AuthSettings(BaseModel):
    """Outbound credentials for one remote (archive or FHIR server)."""

    kind: AuthKind = AuthKind.NONE
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str | None = None
    private_key_file: Path | None = None
    key_id: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> AuthSettings:
        need: dict[AuthKind, tuple[str, ...]] = {
            AuthKind.BASIC: ("username", "password"),
            AuthKind.BEARER: ("token",),
            AuthKind.CLIENT_CREDENTIALS: ("token_url", "client_id", "client_secret"),
            AuthKind.SMART_BACKEND: ("client_id", "private_key_file"),
        }
        missing = [f for f in need.get(self.kind, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"auth kind {self.kind.value!r} needs: {', '.join(missing)}")
        for name in ("password", "token", "client_secret"):
            secret = getattr(self, name)
            if secret is not None and secret.get_secret_value().strip().lower() in _PLACEHOLDERS:
                raise ValueError(f"{name} is a placeholder value; set a real secret")
        return self


class ArchiveSettings(BaseModel):
    """One DICOMweb archive (PS3.18): its QIDO/WADO/STOW root and how to talk to it."""

    name: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    base_url: str = Field(description="DICOMweb root, e.g. http://pacs:8042/dicom-web")
    auth: AuthSettings = AuthSettings()
    page_size: int = Field(default=500, ge=1, le=10000)
    #: the archive's own cap on QIDO results, if it has one; a backfill window whose result
    #: count reaches the cap is split in two rather than trusted to be complete
    max_results: int | None = Field(default=None, ge=1)
    concurrency: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("not an http(s) URL")
        return v.rstrip("/")


class FhirSettings(BaseModel):
    """The EHR's FHIR R4 server."""

    base_url: str = "http://127.0.0.1:8080/fhir"
    auth: AuthSettings = AuthSettings()
    batch_size: int = Field(default=20, ge=1, le=500)
    concurrency: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=60.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("not an http(s) URL")
        return v.rstrip("/")


class StateSettings(BaseModel):
    #: SQLAlchemy URL: sqlite:///path (default, one process) or postgresql+psycopg://...
    url: str = "sqlite:///bridge-state.db"


class SyncSettings(BaseModel):
    poll_interval: float = Field(default=30.0, gt=0, description="seconds between QIDO polls")
    poll_window_days: int = Field(default=2, ge=0, description="StudyDate window polled")
    workers: int = Field(default=2, ge=1, le=64)
    claim_batch: int = Field(default=50, ge=1, le=1000)
    lease_seconds: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=900.0, gt=0)
    patient_retry_interval: float = Field(default=600.0, gt=0)
    backfill_window_days: int = Field(default=30, ge=1)


class MappingSettings(BaseModel):
    files: list[Path] = Field(default_factory=lambda: [REPO_MAPPINGS / "default.yaml"])


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8400, ge=1, le=65535)
    #: the public base URL clients use to reach this service (Endpoint addresses, SMART
    #: redirect URIs); defaults to http://host:port
    public_url: str | None = None


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_output: bool = False


class Settings(BaseSettings):
    """All settings of the bridge.  Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    archives: list[ArchiveSettings] = Field(default_factory=list)
    #: shortcut for a single archive (BRIDGE_ARCHIVE__BASE_URL=...); merged into archives
    archive: ArchiveSettings | None = None
    fhir: FhirSettings = FhirSettings()
    state: StateSettings = StateSettings()
    sync: SyncSettings = SyncSettings()
    mapping: MappingSettings = MappingSettings()
    api: ApiSettings = ApiSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _archives(self) -> Settings:
        if self.archive is not None:
            self.archives = [self.archive, *self.archives]
            self.archive = None
        names = [a.name for a in self.archives]
        if len(set(names)) != len(names):
            raise ValueError(f"archive names must be unique, got {names}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("BRIDGE_CONFIG_FILE")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    def archive_named(self, name: str) -> ArchiveSettings:
        for a in self.archives:
            if a.name == name:
                return a
        raise ConfigError(f"no archive named {name!r} is configured (have: "
                          f"{', '.join(a.name for a in self.archives) or 'none'})")


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read, validate and return the settings; raise :class:`ConfigError` naming each bad key."""
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        os.environ["BRIDGE_CONFIG_FILE"] = str(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
