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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response

from bridge.config import Settings
from bridge.fhir.client import FhirClient
from bridge.gateway.compartment import Compartment, PatientKey, PatientMapper
from bridge.gateway.endpoint import gateway_archive, gateway_base
from bridge.gateway.errors import Forbidden, InsufficientScope, InvalidToken, NotAcceptable
from bridge.gateway.paths import Target
from bridge.gateway.proxy import DICOM_JSON, ArchiveProxy
from bridge.gateway.qido import PatientQuery
from bridge.gateway.scopes import Need, grants
from bridge.gateway.tokens import TokenInfo, TokenValidator
from bridge.gateway.viewer_tokens import ViewerTokens
from bridge.mapping import load_mapping

log = logging.getLogger(__name__)

#: WADO-RS query parameters passed to the archive (PS3.18 8.3.5 rendering, 8.3.3 accept)
_WADO_PARAMS = frozenset({"accept", "charset", "annotation", "quality", "viewport",
                          "window", "iccprofile"})

#: the IID session hook the SMART app installs: request -> patient (FHIR id, Patient/id or
#: system|value) of the authenticated session, or None when there is no session
SessionResolver = Callable[[Request], Awaitable[TokenInfo | None]]


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

    def __init__(self, settings: Settings, *, fhir: FhirClient | None = None) -> None:
        gw = settings.gateway
        name = gateway_archive(settings)
        if name is None:
            raise ValueError("the gateway needs an archive")
        assert gw.viewer_token_secret is not None
        self.settings = gw
        self.public_base = gateway_base(settings)
        self.viewer = ViewerTokens(secret=gw.viewer_token_secret.get_secret_value(),
                                   audience=self.public_base,
                                   lifetime=gw.viewer_token_lifetime)
        self.tokens = TokenValidator(gw, viewer=self.viewer)
        self.archive = ArchiveProxy(settings.archive_named(name), public_base=self.public_base,
                                    timeout=gw.timeout)
        self._own_fhir = fhir is None
        self.fhir = fhir or FhirClient(settings.fhir)
        self.mapper = PatientMapper(load_mapping(settings.mapping.files))
        self.compartment = Compartment(archive=self.archive, fhir=self.fhir, mapper=self.mapper,
                                       ttl=gw.cache_ttl, size=gw.cache_size)
        #: set by the SMART app: resolves its session cookie for IHE IID
        self.session_resolver: SessionResolver | None = None

    async def aclose(self) -> None:
        await self.tokens.aclose()
        await self.archive.aclose()
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
        ids = await self.compartment.identifiers_of(info.patient)
        if not ids:
            raise Forbidden("the token's patient has no identifiers the gateway can match")
        return ids

    # --- QIDO-RS ------------------------------------------------------------------------------

    async def qido(self, info: TokenInfo, target: Target, request: Request,
                   params: Sequence[tuple[str, str]]) -> Response:
        ids = await self.patient_ids(info, Need.SEARCH)
        if ids is None:
            resp = await self.archive.open(target.upstream, params, request.headers)
            return self.archive.stream(resp, rewrite=True)
        accept = request.headers.get("accept", "*/*")
        if not any(t in accept for t in (DICOM_JSON, "application/json", "*/*",
                                          "application/*")):
            raise NotAcceptable("patient-scoped searches are answered in application/dicom+json")
        if target.study is not None:
            await self.compartment.check_study(ids, target.study)
            if target.series is not None:
                await self.compartment.check_member(target.study, target.series)
        assert target.qido_level is not None
        rows = await PatientQuery(self.compartment, ids).run(target.qido_level,
                                                            target.upstream, params)
        return Response(json.dumps(rows, separators=(",", ":")), media_type=DICOM_JSON)

    # --- WADO-RS ------------------------------------------------------------------------------

    async def wado(self, info: TokenInfo, target: Target, request: Request,
                   params: Sequence[tuple[str, str]]) -> Response:
        ids = await self.patient_ids(info, Need.READ)
        assert target.study is not None
        if ids is not None:
            # the whole study is checked before a byte is sent: never a partial study
            await self.compartment.check_study(ids, target.study)
            if target.series is not None:
                await self.compartment.check_member(target.study, target.series,
                                                    target.instance)
        forwarded = [(k, v) for k, v in params if k in _WADO_PARAMS]
        resp = await self.archive.open(target.upstream, forwarded, request.headers)
        if resp.status_code == 404 and ids is not None:
            await resp.aclose()
            raise Forbidden("the resource is not in the token's patient compartment")
        return self.archive.stream(resp, rewrite=target.is_json)
