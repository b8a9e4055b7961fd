"""The settings parts every section builds on: the strict base model, outbound and inbound
credentials, and the two remotes (a DICOMweb archive, a FHIR server).

They live apart from :mod:`bridge.config` so that a room's own settings section
(``bridge/sections/migration.py``, ``bridge/sharing/settings.py``...) can use them while
:class:`bridge.config.Settings` holds that section: config imports the rooms' settings,
the rooms import this module, and no circle forms.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from bridge.urls import http_url

REPO_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"

_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "xxx", "todo"}


class StrictModel(BaseModel):
    """Base of every settings section: an unknown key is an error naming it.

    A typo such as ``sync.pol_interval`` or ``gateway.viewer_token_secrett`` would otherwise
    load fine and leave the default in force, silently (issue 20).
    """

    model_config = ConfigDict(extra="forbid")


class AuthKind(StrEnum):
    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"
    CLIENT_CREDENTIALS = "client_credentials"
    SMART_BACKEND = "smart_backend"


class AuthSettings(StrictModel):
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


def _http_base(v: str) -> str:
    return http_url(v)


#: a server's base URL (DICOMweb root, FHIR base): http(s), no trailing slash
HttpBase = Annotated[str, AfterValidator(_http_base)]

#: archive names the gateway cannot serve at ``/dicom-web/{name}/...``: the resource
#: segments of its root routes (PS3.18 10.4.1 / 10.6.1) and the RFC 3986 5.2.4 dot segments
RESERVED_ARCHIVE_NAMES = frozenset({"studies", "series", "instances", ".", ".."})


class ArchiveSettings(StrictModel):
    """One DICOMweb archive (PS3.18): its QIDO/WADO/STOW root and how to talk to it."""

    #: also a URL path segment (the gateway serves the archive at ``/dicom-web/{name}``) and
    #: the name of its OHIF data source, hence unreserved characters only (RFC 3986 2.3)
    name: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    base_url: HttpBase = Field(description="DICOMweb root, e.g. http://pacs:8042/dicom-web")
    auth: AuthSettings = AuthSettings()
    page_size: int = Field(default=500, ge=1, le=10000)
    #: the archive's own cap on QIDO results, if it has one; a backfill window whose result
    #: count reaches the cap is split in two rather than trusted to be complete
    max_results: int | None = Field(default=None, ge=1)
    concurrency: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("name")
    @classmethod
    def _routable(cls, v: str) -> str:
        if v.lower() in RESERVED_ARCHIVE_NAMES:
            raise ValueError(
                f"archive name {v!r} is reserved: the gateway serves each archive at "
                f"/dicom-web/{{name}}, which must not collide with /dicom-web/studies, "
                f"/series or /instances (or be a dot segment)")
        return v


class FhirSettings(StrictModel):
    """The EHR's FHIR R4 server."""

    base_url: HttpBase = "http://127.0.0.1:8080/fhir"
    auth: AuthSettings = AuthSettings()
    batch_size: int = Field(default=20, ge=1, le=500)
    concurrency: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=60.0, gt=0)


def refuse_placeholder(name: str, secret: SecretStr | None) -> None:
    if secret is not None and secret.get_secret_value().strip().lower() in _PLACEHOLDERS:
        raise ValueError(f"{name} is a placeholder value; set a real secret")


class InboundAuthSettings(StrictModel):
    """Credentials system clients present to the STOW-RS proxy or the admin API (bearer tokens,
    basic users)."""

    bearer_tokens: list[SecretStr] = Field(default_factory=list)
    basic_users: dict[str, SecretStr] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_placeholders(self) -> InboundAuthSettings:
        for token in self.bearer_tokens:
            refuse_placeholder("bearer token", token)
            if len(token.get_secret_value()) < 16:
                raise ValueError("bearer tokens must be at least 16 characters")
        for user, password in self.basic_users.items():
            refuse_placeholder(f"password of {user!r}", password)
        return self


class TaskPace(StrictModel):
    """The pace of one room's task worker in ``serve`` (``sharing.worker``,
    ``record.worker``): how many tasks it runs at once, how it retries."""

    #: tasks run at once
    workers: int = Field(default=2, ge=1, le=32)
    #: tasks claimed per round
    batch: int = Field(default=10, ge=1, le=500)
    #: a claimed task is given back to the queue after this many seconds
    lease_seconds: float = Field(default=300.0, gt=0)
    #: attempts of a task that fails for a retryable reason before it is a failure; an
    #: outage (a server down, refused credentials, a patient not registered yet) waits
    #: however long it lasts
    max_attempts: int = Field(default=8, ge=1)
    #: the first retry's delay in seconds, doubled each attempt up to ``backoff_max``
    backoff_base: float = Field(default=2.0, gt=0)
    #: the longest delay between two attempts of one task, in seconds
    backoff_max: float = Field(default=900.0, gt=0)
    #: seconds the idle worker waits before looking again (the sync wakes it at once when
    #: it queued tasks for it)
    poll_interval: float = Field(default=5.0, gt=0)
