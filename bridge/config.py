"""Typed settings, validated at start-up.

Sources, highest precedence first: ``BRIDGE_*`` environment variables (nested keys with
``__``, e.g. ``BRIDGE_FHIR__BASE_URL``), then the YAML file named by ``BRIDGE_CONFIG_FILE``
(or passed to :func:`load_settings`), then the defaults below.  Each component receives only
its own sub-settings.  Unsafe values (placeholder secrets, plain-http remote endpoints with
credentials) are refused here, before anything connects anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from bridge.errors import ConfigError
from bridge.sections.base import (
    REPO_MAPPINGS,
    ArchiveSettings,
    AuthKind,
    AuthSettings,
    FhirSettings,
    HttpBase,
    InboundAuthSettings,
    StrictModel,
    refuse_placeholder,
)
from bridge.sections.migration import MigrationSettings
from bridge.sections.record import RecordSettings
from bridge.sections.sharing import SharingSettings
from bridge.sections.worklist import WorklistSettings
from bridge.urls import http_url, is_http_url

#: the sections of bridge.sections.base are re-exported: callers know them from here
__all__ = [
    "ApiSettings",
    "ArchiveSettings",
    "AuditSettings",
    "AuthKind",
    "AuthSettings",
    "DeletePolicy",
    "FhirSettings",
    "FrameSource",
    "GatewaySettings",
    "InboundAuthSettings",
    "LogSettings",
    "MappingSettings",
    "OrthancChangesSettings",
    "RealtimeSettings",
    "ScopeForm",
    "Settings",
    "SmartSettings",
    "StateSettings",
    "StrictModel",
    "SyncSettings",
    "TokenValidation",
    "load_settings",
    "unknown_env_sections",
]


class StateSettings(StrictModel):
    #: SQLAlchemy URL: sqlite:///path (default, one process) or postgresql+psycopg://...
    url: str = "sqlite:///bridge-state.db"


class SyncSettings(StrictModel):
    poll_interval: float = Field(default=30.0, gt=0, description="seconds between QIDO polls")
    poll_window_days: int = Field(default=2, ge=0, description="StudyDate window polled")
    workers: int = Field(default=2, ge=1, le=64)
    claim_batch: int = Field(default=50, ge=1, le=1000)
    lease_seconds: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=900.0, gt=0)
    patient_retry_interval: float = Field(default=600.0, gt=0)
    backfill_window_days: int = Field(
        default=30, ge=1, description="StudyDate days of the backfill's first QIDO window")
    backfill_adaptive_windows: bool = Field(
        default=True, description="size each later window from the last one's yield "
        "(aiming at half a QIDO page); off: every window is backfill_window_days long")
    backfill_concurrency: int = Field(
        default=2, ge=1, le=8, description="backfill window QIDOs in flight at once "
        "(marked and checkpointed in date order all the same)")
    bulk_share: float = Field(
        default=0.2, ge=0, le=1, description="share of each claim kept for bulk work "
        "(backfill, reconcile, resync, failures retry) while real-time work (STOW proxy, "
        "notifications, Orthanc changes, the recent-window poll) waits; 0: real time first")
    realtime_workers: int = Field(
        default=2, ge=0, le=16, description="drain loops of serve and sync reserved for "
        "real-time work, beside sync.workers: woken by each real-time mark, they claim only "
        "the real-time lane, so a new study never waits for a bulk batch in flight to "
        "finish; 0: none (the sync.workers loops still claim real-time work first)")


class MappingSettings(StrictModel):
    files: list[Path] = Field(default_factory=lambda: [REPO_MAPPINGS / "default.yaml"])


def _frame_source(value: str) -> str:
    """One CSP Level 3 ``frame-ancestors`` source: ``'self'``, ``'none'`` or an origin
    (``scheme://host[:port]``, the host may start with ``*.``), https unless on loopback."""
    if value in ("'self'", "'none'"):
        return value
    problem = f"api.frame_ancestors: {value!r} is not 'self', 'none' or an origin such as " \
        "https://ehr.example.org"
    parts = urlsplit(value)
    host = parts.hostname or ""
    if (parts.scheme not in ("http", "https") or not host or parts.path not in ("", "/")
            or parts.query or parts.fragment or "@" in parts.netloc
            or "*" in host.removeprefix("*.") or any(c in value for c in " ,;'\"")):
        raise ValueError(problem)
    try:
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(problem) from exc
    if parts.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"api.frame_ancestors: {value!r}: an EHR framing the app must be "
                         "https (plain http only on loopback)")
    return f"{parts.scheme}://{parts.netloc.lower()}"


FrameSource = Annotated[str, AfterValidator(_frame_source)]


class ApiSettings(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8400, ge=1, le=65535)
    #: the public base URL clients use to reach this service (Endpoint addresses, SMART
    #: redirect URIs); defaults to http://host:port
    public_url: str | None = None
    #: who may call the admin routes (``/status``, ``/metrics``, ``/studies/{uid}``): bearer
    #: tokens and basic users; with none configured they answer 401.  The string ``none``
    #: leaves them open to anyone who reaches the listener (a warning at every start-up).
    admin_auth: InboundAuthSettings | Literal["none"] = Field(
        default_factory=lambda: InboundAuthSettings())
    #: serve the admin routes on a listener of their own (``admin_host``, default ``host``;
    #: ``admin_port``) instead of beside the public ones (gateway, SMART app, STOW proxy,
    #: notifications); /healthz and /readyz answer on both
    admin_host: str | None = None
    admin_port: int | None = Field(default=None, ge=1, le=65535)

    @model_validator(mode="after")
    def _admin_listener(self) -> ApiSettings:
        if self.admin_port is None:
            if self.admin_host is not None:
                raise ValueError("api.admin_host needs api.admin_port")
        elif self.admin_port == self.port and (self.admin_host or self.host) == self.host:
            raise ValueError("api.admin_port must differ from api.port on the same host")
        return self
    #: who may show this service's pages in a frame (CSP Level 3 ``frame-ancestors``):
    #: ``'self'`` (default), ``'none'``, or the origins of the EHRs that embed the SMART
    #: app, e.g. ``["'self'", "https://ehr.example.org"]`` (issue 12 item 8)
    frame_ancestors: list[FrameSource] = Field(default_factory=lambda: ["'self'"],
                                               min_length=1)

    @field_validator("frame_ancestors")
    @classmethod
    def _none_alone(cls, sources: list[str]) -> list[str]:
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("api.frame_ancestors: 'none' cannot be combined with sources")
        return list(dict.fromkeys(sources))


class LogSettings(StrictModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_output: bool = False


class DeletePolicy(StrEnum):
    """What happens to our ImagingStudy when its study leaves the archive (issue 5)."""

    DELETE = "delete"  # DELETE the ImagingStudy (R4 3.1.0.7)
    ENTERED_IN_ERROR = "entered-in-error"  # keep it, status entered-in-error (R4 ImagingStudy)
    KEEP = "keep"  # leave it, record a study-gone failure to report


class OrthancChangesSettings(StrictModel):
    """Pull Orthanc's ``/changes`` feed (cursor kept as a state-store checkpoint)."""

    #: the archive (by name) whose Orthanc this is; its credentials are reused
    archive: str = "default"
    #: Orthanc's REST root, e.g. http://orthanc:8042 (not the DICOMweb root)
    url: str
    interval: float = Field(default=1.0, gt=0, description="seconds between empty polls")
    limit: int = Field(default=100, ge=1, le=10000)


class RealtimeSettings(StrictModel):
    """Event sources (STOW proxy, webhook, Orthanc changes), deletes and reconciliation."""

    #: shared secret of the HMAC-SHA256 signed ``POST /notifications``; None disables it
    webhook_secret: SecretStr | None = None
    #: oldest (and furthest in the future) accepted X-Bridge-Timestamp, seconds
    signature_tolerance: float = Field(default=300.0, gt=0)
    #: follow-up sync this long after a study's last event, so counts settle
    quiet_period: float = Field(default=10.0, ge=0)
    #: a study receiving events continuously still gets a follow-up sync this often
    max_coalesce: float = Field(default=60.0, gt=0)
    delete_policy: DeletePolicy = DeletePolicy.KEEP
    stow_auth: InboundAuthSettings = InboundAuthSettings()
    #: archive (by name) the STOW proxy forwards to; default the first configured
    stow_archive: str | None = None
    stow_timeout: float = Field(default=600.0, gt=0)
    orthanc_changes: OrthancChangesSettings | None = None
    #: seconds between scheduled reconciliations in serve mode; 0 disables
    reconcile_interval: float = Field(default=3600.0, ge=0)
    #: StudyDate window (days back from today) of a scheduled reconciliation; 0 = all
    reconcile_window_days: int = Field(default=7, ge=0)

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, v: SecretStr | None) -> SecretStr | None:
        refuse_placeholder("webhook_secret", v)
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("webhook_secret must be at least 16 characters")
        return v


class TokenValidation(StrEnum):
    """How the gateway validates the EHR's SMART access tokens."""

    INTROSPECTION = "introspection"  # RFC 7662 POST to the EHR's introspection endpoint
    JWKS = "jwks"  # JWT signature against the EHR's JWK Set (RFC 7517 / RFC 9068)


class GatewaySettings(StrictModel):
    """The patient-scoped DICOMweb gateway (``/dicom-web``) and IHE IID (issue 8)."""

    enabled: bool = False
    #: the gateway's public DICOMweb root, e.g. https://bridge.example.org/dicom-web (the
    #: default archive's Endpoint address and the viewer-token audience, valid for every
    #: archive); default ``api.public_url`` (or http://host:port) + ``/dicom-web``
    public_url: str | None = None
    #: the default archive (by name): served at the root itself (``/dicom-web/studies``...)
    #: as well as at ``/dicom-web/{name}``, like every configured archive; its Endpoint's
    #: address is the root, the others' ``{root}/{name}``.  Default: the first configured
    archive: str | None = None
    validation: TokenValidation = TokenValidation.INTROSPECTION
    introspection_url: str | None = None
    #: the gateway's client at the introspection endpoint, authenticated with HTTP Basic
    #: (RFC 7662 2.1) unless ``introspection_auth`` says otherwise
    client_id: str | None = None
    client_secret: SecretStr | None = None
    #: how the gateway authenticates to the introspection endpoint when not Basic with
    #: client_id/client_secret: ``bearer`` (a static token, as in SMART App Launch 2.2's
    #: introspection example), ``client_credentials`` or ``smart_backend`` (SMART Backend
    #: Services, private_key_jwt; ``token_url`` required)
    introspection_auth: AuthSettings | None = None
    jwks_uri: str | None = None
    #: expected ``iss`` of EHR JWT access tokens; required in jwks mode (RFC 8725 3.8)
    issuer: str | None = None
    #: expected ``aud`` of EHR tokens (the gateway / FHIR base the EHR issued them for);
    #: required in jwks mode (RFC 8725 3.9, RFC 9068 4); with introspection None = not
    #: checked (introspection answers often carry no aud)
    audience: str | None = None
    #: client_ids whose tokens may carry system/ scopes (SMART Backend Services)
    system_clients: list[str] = Field(default_factory=list)
    #: HMAC key of the viewer tokens the SMART app mints (>= 32 bytes)
    viewer_token_secret: SecretStr | None = None
    viewer_token_lifetime: float = Field(default=300.0, gt=0, le=300.0)
    #: seconds a token validation or a study->patient lookup is remembered
    cache_ttl: float = Field(default=30.0, ge=0, le=300.0)
    cache_size: int = Field(default=4096, ge=16)
    timeout: float = Field(default=600.0, gt=0, description="archive read timeout, seconds")
    #: IHE IID (RAD-106) at /IHEInvokeImageDisplay; the sync then also writes an Endpoint
    #: with connectionType ``ihe-iid`` that every ImagingStudy references, whose address
    #: is ``api.public_url`` (else http://host:port) + /IHEInvokeImageDisplay
    iid_enabled: bool = True
    #: IID redirect targets; {study_uids} is replaced (comma list, encoded) and the optional
    #: {data_source_path} by "" for the default archive, "/{name}" for another (the OHIF
    #: route ``/viewer/viewer/{data source}`` that selects the archive's data source)
    viewer_url_template: str = "/viewer/viewer{data_source_path}?StudyInstanceUIDs={study_uids}"
    history_url: str = "/app/history"

    @model_validator(mode="after")
    def _complete(self) -> GatewaySettings:
        refuse_placeholder("client_secret", self.client_secret)
        refuse_placeholder("viewer_token_secret", self.viewer_token_secret)
        if not self.enabled:
            return self
        secret = self.viewer_token_secret
        if secret is None or len(secret.get_secret_value().encode()) < 32:
            raise ValueError("gateway.viewer_token_secret must be set, at least 32 bytes")
        if self.validation is TokenValidation.INTROSPECTION:
            self._check_introspection()
        else:
            # a JWT is only proof for the issuer and audience it names: unchecked, a token
            # the EHR issued for another resource server would open this one
            missing = [n for n in ("audience", "issuer", "jwks_uri") if not getattr(self, n)]
            if missing:
                raise ValueError(f"gateway validation 'jwks' needs: {', '.join(missing)}")
        for name in ("public_url", "introspection_url", "jwks_uri"):
            url = getattr(self, name)
            if url is not None and not is_http_url(url):
                raise ValueError(f"gateway.{name} is not an http(s) URL")
        if "{study_uids}" not in self.viewer_url_template:
            raise ValueError("gateway.viewer_url_template must contain {study_uids}")
        for name in ("viewer_url_template", "history_url"):
            # no open redirects (SMART 2.2 security): targets are local paths
            target = getattr(self, name)
            if not target.startswith("/") or target.startswith("//"):
                raise ValueError(f"gateway.{name} must be a local path starting with '/'")
        return self

    def _check_introspection(self) -> None:
        if self.introspection_url is None:
            raise ValueError("gateway validation 'introspection' needs: introspection_url")
        auth = self.introspection_auth
        if auth is None:
            if self.client_id is None or self.client_secret is None:
                raise ValueError("gateway validation 'introspection' needs: "
                                 "introspection_auth, or client_id and client_secret")
            return
        if auth.kind is AuthKind.NONE:
            # RFC 7662 2.1: the endpoint MUST require some form of authorization
            raise ValueError("gateway.introspection_auth.kind 'none' is not allowed: the "
                             "introspection endpoint authenticates the gateway")
        if auth.kind is AuthKind.SMART_BACKEND and auth.token_url is None:
            raise ValueError("gateway.introspection_auth.token_url is needed for "
                             "smart_backend (there is no FHIR base to discover it at)")

    def introspection_credentials(self) -> AuthSettings:
        """How the gateway authenticates to the introspection endpoint."""
        if self.introspection_auth is not None:
            return self.introspection_auth
        assert self.client_id is not None and self.client_secret is not None
        return AuthSettings(kind=AuthKind.BASIC, username=self.client_id,
                            password=self.client_secret)


class ScopeForm(StrEnum):
    """SMART scope syntax the app asks for (SMART 2.2 "Scopes for requesting FHIR resources")."""

    V1 = "v1"  # patient/ImagingStudy.read
    V2 = "v2"  # patient/ImagingStudy.rs


class SmartSettings(StrictModel):
    """The SMART on FHIR launch app (``/smart``, ``/app``, ``/viewer``; issue 7)."""

    enabled: bool = False
    client_id: str | None = None
    #: confidential symmetric client (client_secret_basic); None = public client (PKCE only)
    client_secret: SecretStr | None = None
    #: confidential asymmetric client (private_key_jwt, RS384/ES384); wins over the secret
    private_key_file: Path | None = None
    key_id: str | None = None
    #: FHIR bases (``iss``) the app may be launched from; nothing else is contacted
    iss_allowlist: list[str] = Field(default_factory=list)
    #: the FHIR base a standalone launch (``/smart/launch`` without iss) goes to
    standalone_iss: str | None = None
    scope_form: ScopeForm = ScopeForm.V2
    #: added to the scopes; online_access lets the session renew its access token
    extra_scopes: list[str] = Field(default_factory=lambda: ["online_access"])
    #: ask for ``openid fhirUser`` when the EHR offers sso-openid-connect (SMART 2.2 "Scopes
    #: for requesting identity data"); the id_token is then validated (OpenID Connect Core
    #: 3.1.3.7: signature against the EHR's JWKS, iss, aud, exp, nonce) and its fhirUser
    #: kept in the session.  False: neither scope is requested and no id_token is read
    request_identity: bool = True
    #: public base of this service for the redirect URI ``{base}/smart/callback``; default
    #: ``api.public_url`` (or http://host:port)
    redirect_base_url: str | None = None
    #: how a study opens: ``{study_uids}`` (comma list, encoded), ``{token}`` (viewer
    #: token, when the gateway is on; for another viewer: the app's own OHIF fetches and
    #: renews its token from /app/viewer-token, no token in its URL) and
    #: ``{data_source_path}`` ("" for the gateway's default archive, "/{name}" for another:
    #: OHIF's ``/viewer/{data source}`` route picks that archive's DICOMweb root) are
    #: replaced; a local path or an http(s) URL
    viewer_url_template: str = "/viewer/viewer{data_source_path}?StudyInstanceUIDs={study_uids}"
    #: the built OHIF viewer (``docker/local/fetch_ohif.sh`` prints it); None = no /viewer
    ohif_dist_dir: Path | None = None
    session_lifetime: float = Field(default=8 * 3600.0, gt=0, description="seconds")
    #: SQLAlchemy URL of the session table; default ``state.url``
    session_db_url: str | None = None
    http_timeout: float = Field(default=30.0, gt=0)
    #: unfinished launches kept at most (the oldest make room): ``GET /smart/launch`` is
    #: unauthenticated, so its rows are bounded (issue 12 item 15)
    max_pending_launches: int = Field(default=1000, ge=1)
    #: launches per minute per client address (a burst of as many); 0 = no limit
    launch_rate_per_minute: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> SmartSettings:
        refuse_placeholder("smart.client_secret", self.client_secret)
        urls = [*self.iss_allowlist]
        for name in ("standalone_iss", "redirect_base_url"):
            if getattr(self, name) is not None:
                urls.append(getattr(self, name))
        for url in urls:
            http_url(url, name="smart")
        self.iss_allowlist = [u.rstrip("/") for u in self.iss_allowlist]
        if self.standalone_iss is not None:
            self.standalone_iss = self.standalone_iss.rstrip("/")
            if self.standalone_iss not in self.iss_allowlist:
                raise ValueError("smart.standalone_iss must be on smart.iss_allowlist")
        if "{study_uids}" not in self.viewer_url_template:
            raise ValueError("smart.viewer_url_template must contain {study_uids}")
        target = self.viewer_url_template
        if target.startswith("//") or not (target.startswith("/")
                                           or urlsplit(target).scheme in ("http", "https")):
            raise ValueError("smart.viewer_url_template must be a local path or http(s) URL")
        if self.enabled and not self.client_id:
            raise ValueError("smart.enabled needs smart.client_id")
        if self.enabled and not self.iss_allowlist:
            raise ValueError("smart.enabled needs at least one smart.iss_allowlist entry")
        return self


class AuditSettings(StrictModel):
    """The audit trail of image access (``bridge.audit``; IHE BALP AuditEvents, issue 20).

    Every gateway, IID and SMART app access decision is logged (logger ``bridge.audit``,
    no tokens, names or identifiers of patients) and, when ``enabled``, written as a FHIR R4
    AuditEvent to ``base_url`` (default ``fhir.base_url``, with ``fhir.auth`` unless
    ``auth`` is given)."""

    enabled: bool = True
    base_url: HttpBase | None = None
    #: credentials for ``base_url``; default ``fhir.auth`` when ``base_url`` is unset, else none
    auth: AuthSettings | None = None
    #: records waiting to be written; when full, new records are dropped and counted
    queue_size: int = Field(default=10000, ge=1)
    #: at most this many AuditEvents per FHIR batch Bundle (the writer sends what is
    #: waiting, so batches grow only while the audit server is slower than the requests)
    batch_size: int = Field(default=50, ge=1, le=500)
    #: a decision identical to one recorded less than this many seconds ago (same who,
    #: patient, study, action, outcome) is counted, not recorded again: a viewer's hundreds
    #: of frame requests for one study make one record per window; 0 records every request
    aggregate_seconds: float = Field(default=60.0, ge=0)
    timeout: float = Field(default=30.0, gt=0)


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
    gateway: GatewaySettings = GatewaySettings()
    realtime: RealtimeSettings = RealtimeSettings()
    smart: SmartSettings = SmartSettings()
    audit: AuditSettings = AuditSettings()
    #: the rooms of issues 14-17, each off until configured
    sharing: SharingSettings = SharingSettings()
    migration: MigrationSettings = MigrationSettings()
    record: RecordSettings = RecordSettings()
    worklist: WorklistSettings = WorklistSettings()

    @model_validator(mode="after")
    def _archives(self) -> Settings:
        if self.archive is not None:
            self.archives = [self.archive, *self.archives]
            self.archive = None
        names = [a.name for a in self.archives]
        if len(set(names)) != len(names):
            raise ValueError(f"archive names must be unique, got {names}")
        chosen = self.gateway.archive
        if self.gateway.enabled and names and chosen is not None and chosen not in names:
            raise ValueError(f"gateway.archive {chosen!r} is not a configured archive "
                             f"(have: {', '.join(names)})")
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
        config_file = _CONFIG_FILE.get() or os.environ.get("BRIDGE_CONFIG_FILE")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    def archive_named(self, name: str) -> ArchiveSettings:
        for a in self.archives:
            if a.name == name:
                return a
        raise ConfigError(f"no archive named {name!r} is configured (have: "
                          f"{', '.join(a.name for a in self.archives) or 'none'})")


#: the config file of the load in progress (:func:`load_settings`), before BRIDGE_CONFIG_FILE
_CONFIG_FILE: ContextVar[str | None] = ContextVar("bridge_config_file", default=None)


def unknown_env_sections(environ: Mapping[str, str]) -> list[str]:
    """``BRIDGE_X__...`` variables whose section ``X`` is not a settings section.

    Variables below a known section are checked by the models themselves (``extra`` is
    forbidden everywhere), but pydantic-settings never looks at a variable whose first
    segment names no field, so ``BRIDGE_SYNCC__POLL_INTERVAL`` would be ignored silently.
    Variables without ``__`` (``BRIDGE_CONFIG_FILE``, the test tools' ``BRIDGE_HAPI_JAR``)
    are not settings and are left alone.
    """
    sections = set(Settings.model_fields)
    return sorted(name for name in environ
                  if name.upper().startswith("BRIDGE_") and "__" in name
                  and name[len("BRIDGE_"):].split("__", 1)[0].lower() not in sections)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read, validate and return the settings; raise :class:`ConfigError` naming each bad key."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    unknown = unknown_env_sections(os.environ)
    if unknown:
        raise ConfigError(
            f"invalid settings: {', '.join(unknown)}: no such settings section (have: "
            f"{', '.join(sorted(Settings.model_fields))})")
    # the file is handed to the settings sources for this one construction; writing it into
    # os.environ (as before) leaked it into every later load in the process
    token = _CONFIG_FILE.set(str(config_file) if config_file is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    finally:
        _CONFIG_FILE.reset(token)

