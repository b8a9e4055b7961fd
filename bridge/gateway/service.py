"""The gateway: authenticate, authorise, check the compartment, proxy (SMART Imaging
Access draft; PS3.18 10.4 WADO-RS and 10.6 QIDO-RS).

Access rules:

* a **patient** token (viewer token, or an EHR token with a ``patient``) needs
  ``patient/ImagingStudy`` (or ``patient/*``) with read (``r`` / v1 ``read``) for WADO-RS
  and search (``s`` / ``read``) for QIDO-RS; it sees only its patient's studies: QIDO
  results are filtered (:mod:`bridge.gateway.qido`), and any retrieve of a study, series or
  instance that is not provably the patient's is 403 (not 404, not empty).  The check is
  made on the whole study before the first byte is sent, so a study is never partial.
* a **system** token (``system/`` scopes of a client listed in ``gateway.system_clients``)
  sees the whole archive.
* anything else is 403.

Every configured archive is served (:mod:`bridge.gateway.archives`): the default one at the
root, each one at ``/dicom-web/{name}``; the compartment check is always made in the archive
the request names.  One viewer-token audience (the root) is valid for all of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bridge.audit import AuditTrail
from bridge.config import GatewaySettings
from bridge.fhir.client import FhirClient
from bridge.gateway.archives import ArchiveRoute, ArchiveRoutes
from bridge.gateway.compartment import PatientDirectory, PatientKey, PatientMapper
from bridge.gateway.errors import Forbidden, InsufficientScope, InvalidToken, NotAcceptable
from bridge.gateway.legacy_union import (
    merge_studies,
    patient_matches,
    patient_rows,
    warning_header,
)
from bridge.gateway.legacy_wado import LegacySide, legacy_answer
from bridge.gateway.paths import Target
from bridge.gateway.proxy import DICOM_JSON
from bridge.gateway.qido import PatientQuery
from bridge.gateway.query_params import checked_query
from bridge.gateway.scopes import Need, grants
from bridge.gateway.tokens import TokenInfo, TokenValidator
from bridge.gateway.viewer_tokens import ViewerTokens

log = logging.getLogger(__name__)

#: WADO-RS query parameters passed to the archive (PS3.18 8.3.5 rendering, 8.3.3 accept)
_WADO_PARAMS = frozenset({"accept", "charset", "annotation", "quality", "viewport",
                          "window", "iccprofile"})

#: the IID session hook the SMART app installs: request -> patient (FHIR id, Patient/id or
#: system|value) of the authenticated session, or None when there is no session
SessionResolver = Callable[[Request], Awaitable[TokenInfo | None]]
#: the SMART app's check that a session (a viewer token's ``sid``) is still open
SessionAlive = Callable[[str], Awaitable[bool]]


def bearer(request: Request) -> str:
    """The bearer token of the request (RFC 6750 2.1 header form only)."""
    values = request.headers.getlist("authorization")
    if not values:
        raise InvalidToken("no bearer token")
    if len(values) > 1:
        raise InvalidToken("more than one Authorization header")
    scheme, _, token = values[0].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Authorization is not a bearer token")
    return token.strip()


class Gateway:
    """Everything the ``/dicom-web`` routes need; one per app, ``aclose()`` on shutdown."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        public_base: str,
        mapper: PatientMapper,
        archives: ArchiveRoutes,
        fhir: FhirClient,
        own_fhir: bool = False,
        audit: AuditTrail | None = None,
        session_resolver: SessionResolver | None = None,
        session_alive: SessionAlive | None = None,
        legacy: LegacySide | None = None,
    ) -> None:
        """``public_base``: the gateway's public root (:attr:`bridge.urls.PublicUrls.
        gateway`); ``fhir``: where patients are looked up (closed by :meth:`aclose` when
        ``own_fhir``); ``session_resolver`` and ``session_alive``: the SMART app's session
        look-ups (IHE IID's session cookie; a viewer token ends with its session);
        ``legacy``: the legacy PACS whose studies a study search of the default archive
        also answers during a migration (:mod:`bridge.gateway.legacy_union`)."""
        gw = settings
        assert gw.viewer_token_secret is not None
        self.settings = gw
        self.public_base = public_base
        # one audience, the root, for every archive: a viewer token opens the patient's
        # studies wherever they are, the compartment decides what it sees
        self.viewer = ViewerTokens(secret=gw.viewer_token_secret.get_secret_value(),
                                   audience=self.public_base,
                                   lifetime=gw.viewer_token_lifetime)
        self.tokens = TokenValidator(gw, viewer=self.viewer, session_alive=session_alive)
        self.mapper = mapper
        self.archives = archives
        self._own_fhir = own_fhir
        self.fhir = fhir
        self.patients = PatientDirectory(fhir=self.fhir, ttl=gw.cache_ttl, size=gw.cache_size)
        #: where access decisions are recorded (:mod:`bridge.gateway.observe`)
        self.audit = audit
        #: the SMART app's session cookie as a token, for IHE IID
        self.session_resolver = session_resolver
        #: the migration gateway's legacy side (None: the archive alone)
        self.legacy = legacy

    async def aclose(self) -> None:
        await self.tokens.aclose()
        await self.archives.aclose()
        if self.legacy is not None:
            await self.legacy.aclose()
        if self._own_fhir:
            await self.fhir.aclose()

    # --- authentication / authorisation ------------------------------------------------------

    async def authenticate(self, request: Request) -> TokenInfo:
        return await self.tokens.validate(bearer(request))

    async def patient_ids(self, info: TokenInfo, need: Need) -> frozenset[PatientKey] | None:
        """The patient identifiers the token is confined to; None for a system token.
        Raises :class:`Forbidden` when the token may not make this kind of request."""
        if info.kind == "system":
            if not grants(info.scopes, context="system", need=need):
                raise InsufficientScope("system token lacks system/ImagingStudy read/search")
            return None
        if info.patient is None:
            raise Forbidden("the token has no patient context (and is not a trusted system "
                            "client)")
        if not grants(info.scopes, context="patient", need=need):
            raise InsufficientScope(
                "the token's scopes do not include patient/ImagingStudy."
                + ("rs (or .read)" if need is Need.SEARCH else "r (or .read)"))
        ids = await self.patients.identifiers_of(info.patient)
        if not ids:
            raise Forbidden("the token's patient has no identifiers the gateway can match")
        return ids

    async def archive_for(self, patient: str, study_uids: Sequence[str]) -> ArchiveRoute:
        """The archive to open ``study_uids`` from for ``patient``: the first (default
        first) holding the first study as one of the patient's, else the default archive
        (where the viewer is then refused like for any other study not theirs).  Without
        I/O when there is one archive.  A viewer shows one archive, so studies of one
        request are expected in one archive."""
        if len(self.archives) == 1 or not study_uids:
            return self.archives.default
        ids = await self.patients.identifiers_of(patient)
        found = await self.archives.holding(study_uids[0], ids) if ids else None
        return found or self.archives.default

    # --- QIDO-RS ------------------------------------------------------------------------------

    async def qido(self, info: TokenInfo, target: Target, request: Request,
                   params: Sequence[tuple[str, str]], *, archive: str | None = None
                   ) -> Response:
        """QIDO-RS in ``archive`` (None: the default archive at the root)."""
        route = self.archives.get(archive)
        params = checked_query(params)  # 400 naming a malformed parameter, any token
        ids = await self.patient_ids(info, Need.SEARCH)
        union = (self.legacy is not None and archive is None
                 and target.qido_level == "studies" and target.study is None)
        if ids is None and union:
            rows = await route.proxy.qido_json(target.upstream, params)
            return await self._with_legacy(rows, params, None)
        if ids is None:
            resp = await route.proxy.open(target.upstream, params, request.headers)
            return route.proxy.stream(resp, rewrite=True)
        accept = request.headers.get("accept", "*/*")
        if not any(t in accept for t in (DICOM_JSON, "application/json", "*/*",
                                          "application/*")):
            raise NotAcceptable("patient-scoped searches are answered in application/dicom+json")
        compartment = route.compartment
        if target.study is not None:
            await compartment.check_study(ids, target.study)
            if target.series is not None:
                await compartment.check_member(target.study, target.series)
        assert target.qido_level is not None
        rows = await PatientQuery(compartment, ids).run(target.qido_level,
                                                       target.upstream, params)
        if union:
            return await self._with_legacy(rows, params, ids)
        return Response(json.dumps(rows, separators=(",", ":")), media_type=DICOM_JSON)

    async def _with_legacy(self, rows: list[dict[str, Any]],
                           params: Sequence[tuple[str, str]],
                           ids: frozenset[PatientKey] | None) -> Response:
        """The archive's ``rows`` and the legacy sources' studies (the compartment's
        post-filter applied to those exactly as to the archive's), a Warning when a
        source gave none."""
        assert self.legacy is not None
        matches = None if ids is None else patient_matches(ids, self.mapper)
        found = await self.legacy.studies(params, patients=matches)
        legacy = found.rows if ids is None else patient_rows(found.rows, ids, self.mapper)
        limit = next((int(v) for k, v in params if k == "limit"), None)
        merged = merge_studies(rows, legacy, limit=limit)
        headers = {"Warning": warning_header(found.problems)} if found.problems else None
        return Response(json.dumps(merged, separators=(",", ":")), media_type=DICOM_JSON,
                        headers=headers)

    async def _legacy_wado(self, route: ArchiveRoute, ids: frozenset[PatientKey] | None,
                           target: Target) -> Response | None:
        """The answer from the legacy PACS for a study the archive does not hold (its
        migration queued first), after the compartment's check of its legacy row; None
        when the archive holds it or no source does (the archive's answer then)."""
        assert self.legacy is not None and target.study is not None
        if await route.compartment.study_patient(target.study) is not None:
            return None
        row = await self.legacy.locate(target.study)
        if row is None:
            return None
        if ids is not None and self.mapper.key_of(row) not in ids:
            raise Forbidden("the study is not in the token's patient compartment")
        return legacy_answer(target, await self.legacy.instances(target.study))

    # --- WADO-RS ------------------------------------------------------------------------------

    async def wado(self, info: TokenInfo, target: Target, request: Request,
                   params: Sequence[tuple[str, str]], *, archive: str | None = None
                   ) -> Response:
        """WADO-RS from ``archive`` (None: the default archive at the root)."""
        route = self.archives.get(archive)
        ids = await self.patient_ids(info, Need.READ)
        assert target.study is not None
        if self.legacy is not None and archive is None:
            served = await self._legacy_wado(route, ids, target)
            if served is not None:
                return served
        if ids is not None:
            # the whole study is checked before a byte is sent: never a partial study
            await route.compartment.check_study(ids, target.study)
            if target.series is not None:
                await route.compartment.check_member(target.study, target.series,
                                                     target.instance)
        forwarded = [(k, v) for k, v in params if k in _WADO_PARAMS]
        passed = frozenset({404}) if ids is not None else frozenset()
        resp = await route.proxy.open(target.upstream, forwarded, request.headers,
                                      passed=passed)
        if resp.status_code == 404:
            await resp.aclose()
            raise Forbidden("the resource is not in the token's patient compartment")
        return route.proxy.stream(resp, rewrite=target.is_json)
