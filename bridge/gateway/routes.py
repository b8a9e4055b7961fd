"""``/dicom-web`` GET routes (QIDO-RS and WADO-RS; PS3.18 10.4 and 10.6).

``/dicom-web/{studies,series,instances}`` and ``/dicom-web/studies/...`` serve the default
archive; ``/dicom-web/{archive}/...`` the same paths of any configured archive (the root
routes are declared first, and no archive may be named ``studies``, ``series`` or
``instances``, so the two forms never overlap).  An unknown archive name is 404.

Only GET is routed here: ``POST /dicom-web/studies`` (STOW-RS) belongs to the STOW proxy
(:mod:`bridge.realtime.stow_proxy`), which can reuse :func:`require_token` to accept the
same bearer tokens.

Errors (PS3.18 8.6): 400 malformed path or query (a patient token gets 403 instead, except
for a malformed QIDO-RS parameter, 400 naming it for every token); 401 +
``WWW-Authenticate: Bearer`` (RFC 6750 3.1: ``error="invalid_token"`` when a token was
presented, no error code when none was); 403 + message when the token may not see the
resource; 404/406 and other refusals of the archive with the gateway's message, never the
archive's body; 500 without ``Retry-After`` when the gateway is misconfigured (the EHR
refuses its own credentials); 503 + ``Retry-After`` when the archive (or the EHR's token
service) does not answer.

Every answer, refusals included (401s too), is counted in the gateway's metrics and its
access decision handed to the audit trail (:mod:`bridge.gateway.observe`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from starlette.responses import Response

from bridge.errors import BridgeError, Outage
from bridge.gateway import paths
from bridge.gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    InvalidQueryParameter,
    InvalidToken,
)
from bridge.gateway.observe import Seen, target_of
from bridge.gateway.service import Gateway
from bridge.gateway.tokens import TokenInfo

REALM = 'Bearer realm="dicom-web"'


def _quote(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


def http_error(exc: BridgeError, *, token_present: bool = True) -> HTTPException:
    """The HTTP answer for a gateway, archive or EHR error."""
    if isinstance(exc, InvalidToken):
        challenge = REALM
        if token_present:
            challenge += f', error="invalid_token", error_description="{_quote(exc.message)}"'
        return HTTPException(401, exc.message, headers={"WWW-Authenticate": challenge})
    if isinstance(exc, Forbidden):
        headers = None
        if exc.oauth_error:
            headers = {"WWW-Authenticate": f'{REALM}, error="{exc.oauth_error}"'}
        return HTTPException(403, exc.message, headers=headers)
    if isinstance(exc, Outage):  # the archive, the FHIR server or the token service
        after = exc.retry_after or 5.0
        return HTTPException(503, f"temporarily unavailable: {exc.message}",
                             headers={"Retry-After": str(math.ceil(after))})
    if isinstance(exc, GatewayError):
        return HTTPException(exc.http_status, exc.message)
    return HTTPException(502, f"upstream error: {exc.message}")


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway | None = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise HTTPException(404, "the DICOMweb gateway is not enabled")
    return gateway


async def require_token(request: Request) -> TokenInfo:
    """FastAPI dependency: the request's validated bearer token (401 otherwise).

    Reusable by other routes (e.g. the STOW proxy)::

        async def route(token: Annotated[TokenInfo, Depends(require_token)]) -> ...
    """
    gateway = gateway_of(request)
    try:
        return await gateway.authenticate(request)
    except BridgeError as exc:
        present = bool(request.headers.get("authorization"))
        error = http_error(exc, token_present=present)
        if request.method == "GET":  # the STOW proxy's POSTs are not the gateway's to count
            Seen(gateway.audit, request, target=target_of(request)).refused(
                exc, error.status_code)
        raise error from exc


Token = Annotated[TokenInfo, Depends(require_token)]


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


async def _serve(request: Request, token: TokenInfo, path: str,
                 archive: str | None = None) -> Response:
    gateway = gateway_of(request)
    seen = Seen(gateway.audit, request, token=token, archive=archive)  # metrics, audit
    try:
        target = seen.target = paths.parse(path)
        if target.qido_level is not None:
            response = await gateway.qido(token, target, request, _params(request),
                                          archive=archive)
        else:
            response = await gateway.wado(token, target, request, _params(request),
                                          archive=archive)
    except GatewayError as exc:
        refusal: GatewayError = exc
        if isinstance(exc, BadRequest) and token.kind != "system" \
                and not isinstance(exc, InvalidQueryParameter):
            # a patient token gets 403 for anything not provably its own, malformed or not;
            # a malformed QIDO parameter is 400 for everyone (syntax alone, no oracle), and
            # so is the archive's own 400 (ArchiveRefused) once the compartment was checked
            refusal = Forbidden(f"refused: {exc.message}")
        error = http_error(refusal)
        seen.refused(refusal, error.status_code)
        raise error from exc
    except BridgeError as exc:
        error = http_error(exc)
        seen.refused(exc, error.status_code)
        raise error from exc
    return seen.permitted(response)


def dicomweb_router(gateway: Gateway) -> APIRouter:
    """The ``/dicom-web`` GET routes; the router's lifespan closes ``gateway``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    router = APIRouter(prefix="/dicom-web", tags=["dicom-web"], lifespan=lifespan)

    @router.get("/studies")
    async def search_studies(request: Request, token: Token) -> Response:
        return await _serve(request, token, "studies")

    @router.get("/series")
    async def search_series(request: Request, token: Token) -> Response:
        return await _serve(request, token, "series")

    @router.get("/instances")
    async def search_instances(request: Request, token: Token) -> Response:
        return await _serve(request, token, "instances")

    @router.get("/studies/{rest:path}")
    async def study_resource(request: Request, token: Token, rest: str) -> Response:
        return await _serve(request, token, f"studies/{rest}")

    # --- every configured archive by name (after the root routes: they win) -----------------

    @router.get("/{archive}/studies")
    async def archive_search_studies(request: Request, token: Token, archive: str
                                     ) -> Response:
        return await _serve(request, token, "studies", archive)

    @router.get("/{archive}/series")
    async def archive_search_series(request: Request, token: Token, archive: str
                                    ) -> Response:
        return await _serve(request, token, "series", archive)

    @router.get("/{archive}/instances")
    async def archive_search_instances(request: Request, token: Token, archive: str
                                       ) -> Response:
        return await _serve(request, token, "instances", archive)

    @router.get("/{archive}/studies/{rest:path}")
    async def archive_study_resource(request: Request, token: Token, archive: str, rest: str
                                     ) -> Response:
        return await _serve(request, token, f"studies/{rest}", archive)

    return router
