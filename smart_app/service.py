"""``SmartApp``: what the routes share (settings, session store, HTTP client, client auth,
the EHRs' OpenID keys) and the session operations: start a launch, finish it (with the
id_token checked), keep the access token fresh, sign out (tokens revoked at the EHR)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bridge.config import SmartSettings
from bridge.errors import BridgeError
from bridge.httpclient import HttpClient
from smart_app import launch
from smart_app.gateway_port import ImagingGateway
from smart_app.history import FhirReader
from smart_app.identity import Identity, OpenIdProviders
from smart_app.launch import ClientAuth, LaunchError
from smart_app.pending import LAUNCH_COOKIE, PENDING_LIFETIME, PendingLaunches
from smart_app.ratelimit import RateLimiter
from smart_app.sessions import COOKIE_NAME, Session, SessionStore, session_id

log = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class _Opened:
    """What :meth:`SmartApp.open` opens for one run of the app (closed by ``aclose``)."""

    store: SessionStore
    pending: PendingLaunches
    http: httpx.AsyncClient
    auth: ClientAuth
    openid: OpenIdProviders


class SmartApp:
    """One per FastAPI app, built by the composition root; :meth:`open` at start-up (its
    lifespan), ``aclose()`` on shutdown.

    ``base``: the app's public base URL (:attr:`bridge.urls.PublicUrls.smart`);
    ``session_db_url``: where sessions live (``smart.session_db_url``, else the state
    store's database)."""

    def __init__(self, settings: SmartSettings, *, base: str, session_db_url: str) -> None:
        self.settings = settings
        self.base = base
        self.redirect_uri = f"{self.base}/smart/callback"
        parts = urlsplit(self.base)
        #: Secure cookies except on plain-http loopback (a browser drops Secure on http)
        self.secure_cookie = not (parts.scheme == "http" and parts.hostname in _LOOPBACK)
        self._session_db_url = session_db_url
        rate = self.settings.launch_rate_per_minute
        self.launch_limit = RateLimiter(rate_per_minute=rate) if rate else None
        self._opened: _Opened | None = None
        self._refresh_locks: dict[str, asyncio.Lock] = {}

    def open(self) -> None:
        """Open the session tables, the HTTP client and the client credentials."""
        if self._opened is not None:
            return
        store = SessionStore(self._session_db_url, lifetime=self.settings.session_lifetime)
        pending = PendingLaunches(store.engine, capacity=self.settings.max_pending_launches)
        http = HttpClient(timeout=self.settings.http_timeout, follow_redirects=False)
        self._opened = _Opened(store, pending, http, ClientAuth(self.settings),
                               OpenIdProviders(http))

    def _open(self) -> _Opened:
        if self._opened is None:
            raise RuntimeError("the SMART app is not started (SmartApp.open)")
        return self._opened

    @property
    def store(self) -> SessionStore:
        return self._open().store

    @property
    def pending(self) -> PendingLaunches:
        return self._open().pending

    @property
    def http(self) -> httpx.AsyncClient:
        return self._open().http

    @property
    def auth(self) -> ClientAuth:
        return self._open().auth

    @property
    def openid(self) -> OpenIdProviders:
        return self._open().openid

    async def aclose(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            await opened.http.aclose()
            opened.store.close()

    async def session_alive(self, session_key: str) -> bool:
        """Whether the session of this row key is open: viewer tokens name the session
        that minted them, so a sign-out ends them too."""
        return await asyncio.to_thread(self.store.is_open, session_key)

    # --- cookies --------------------------------------------------------------------------

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE_NAME, session.cookie,
                            max_age=int(self.settings.session_lifetime), path="/",
                            httponly=True, samesite="lax", secure=self.secure_cookie)

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax",
                               secure=self.secure_cookie)

    def set_launch_cookie(self, response: Response, cookie: str) -> None:
        """The pending launch's cookie: sent only to ``/smart/*``, SameSite=Lax (the EHR's
        redirect to the callback is a top-level GET, which carries it)."""
        response.set_cookie(LAUNCH_COOKIE, cookie, max_age=int(PENDING_LIFETIME),
                            path="/smart", httponly=True, samesite="lax",
                            secure=self.secure_cookie)

    def clear_launch_cookie(self, response: Response) -> None:
        response.delete_cookie(LAUNCH_COOKIE, path="/smart", httponly=True, samesite="lax",
                               secure=self.secure_cookie)

    async def session_of(self, request: Request) -> Session | None:
        return await run_in_threadpool(self.store.get, request.cookies.get(COOKIE_NAME))

    # --- launch ---------------------------------------------------------------------------

    def launch_wait(self, request: Request) -> int:
        """0 when this client may start a launch now, else the seconds until it may."""
        if self.launch_limit is None:
            return 0
        client = request.client.host if request.client is not None else "unknown"
        return self.launch_limit.allow(client)

    async def begin(self, *, iss: str | None, launch_id: str | None) -> tuple[str, str]:
        """Start an EHR (iss + launch) or standalone (neither) launch: the authorization URL
        to redirect to and the pending launch's cookie.  Nothing is stored unless the
        launch is valid and the EHR's discovery answered; the browser's session, if any,
        is not touched (it is replaced only by a completed callback)."""
        if launch_id is not None and not iss:
            raise LaunchError("Launch refused", "an EHR launch needs iss")
        standalone = launch_id is None
        if standalone and not iss:
            if self.settings.standalone_iss is None:
                raise LaunchError("Launch refused", "no EHR is configured for standalone launch")
            iss = self.settings.standalone_iss
        assert iss is not None
        base = launch.check_iss(self.settings, iss)
        config = await launch.discover(self.http, base)
        caps = config.capabilities
        if launch_id is not None and caps and "launch-ehr" not in caps:
            raise LaunchError("EHR not supported", "the EHR does not offer EHR launch", status=502)
        verifier, challenge = launch.pkce_pair()
        state = launch.new_state()
        # SMART 2.2 "Scopes for requesting identity data", when the EHR offers OpenID Connect
        identity = self.settings.request_identity and config.openid_issuer is not None
        nonce = launch.new_state() if identity else None
        scope = launch.requested_scopes(self.settings, standalone=standalone,
                                        identity=identity)
        cookie = await run_in_threadpool(self.pending.create, {
            "state": state, "code_verifier": verifier, "iss": base,
            "token_endpoint": config.token_endpoint, "scope": scope,
            "standalone": standalone, "nonce": nonce,
            "openid_issuer": config.openid_issuer if identity else None,
            "revocation_endpoint": config.revocation_endpoint})
        url = launch.authorize_url(config, client_id=self.auth.client_id,
                                   redirect_uri=self.redirect_uri, scope=scope, state=state,
                                   aud=base, code_challenge=challenge, launch=launch_id,
                                   nonce=nonce)
        log.info("smart launch started", extra={"standalone": standalone,
                                                 "client_auth": self.auth.kind,
                                                 "openid": identity})
        return url, cookie

    async def finish(self, request: Request, params: dict[str, str]) -> Session:
        """The callback: check state, exchange the code, keep the grant in a new session
        (new cookie: no fixation) that replaces the browser's previous one.  Raises
        :class:`LaunchError`; then no session is touched, and the pending launch is used
        up only when the callback was its own (``state`` matched)."""
        launch_cookie = request.cookies.get(LAUNCH_COOKIE)
        pending = await run_in_threadpool(self.pending.get, launch_cookie)
        state = params.get("state", "")
        if pending is None:
            raise LaunchError("Sign-in failed", "no launch is in progress in this browser "
                              "(the launch expired or cookies are blocked)")
        if not state or not hmac.compare_digest(str(pending["state"]), state):
            # RFC 6749 10.12: a callback this browser's launch did not ask for is ignored
            # (its launch stays open for the real one)
            raise LaunchError("Sign-in failed", "the state parameter does not match this "
                              "browser's launch (possible forgery)")
        # the code is spent, whatever follows: the launch cannot be finished twice
        await run_in_threadpool(self.pending.delete, launch_cookie)
        if "error" in params:
            reason = params["error"]
            said = launch.error_description(params)
            if reason == "access_denied":
                raise LaunchError("Access not granted", "the authorization was denied at the EHR",
                                  status=403, ehr_description=said)
            raise LaunchError("Sign-in failed", f"the EHR answered {reason[:80]!r}",
                              ehr_description=said)
        code = params.get("code")
        if not code:
            raise LaunchError("Sign-in failed", "the EHR sent no authorization code")
        body = await launch.exchange_code(
            self.http, self.auth, token_endpoint=pending["token_endpoint"], code=code,
            redirect_uri=self.redirect_uri, code_verifier=pending["code_verifier"])
        grant = launch.grant_from_token(body)
        try:
            identity = await self._identity(body, grant, pending)
            if not grant["patient"]:
                raise LaunchError("Sign-in failed", "the EHR gave no patient context")
        except LaunchError:
            # tokens this app will never use are handed back (RFC 7009), best effort
            await self._revoke(grant, pending.get("revocation_endpoint"),
                               str(pending["token_endpoint"]))
            raise
        data = {**grant, "iss": pending["iss"], "token_endpoint": pending["token_endpoint"],
                "revocation_endpoint": pending.get("revocation_endpoint"),
                "fhir_user": identity.fhir_user if identity else None,
                "started_at": time.time()}
        new = await run_in_threadpool(self.store.create, data)
        # one browser, one session: the one it had (if any) ends with this sign-in
        await run_in_threadpool(self.store.delete, request.cookies.get(COOKIE_NAME))
        log.info("smart launch completed", extra={"standalone": pending.get("standalone"),
                                                   "refreshable": bool(grant["refresh_token"]),
                                                   "identified": identity is not None})
        return new

    async def _identity(self, body: dict[str, Any], grant: dict[str, Any],
                        pending: dict[str, Any]) -> Identity | None:
        """The id_token's identity when ``openid`` was asked for and granted (None when the
        EHR declined the scope); :class:`LaunchError` when the id_token is missing or does
        not validate."""
        issuer, nonce = pending.get("openid_issuer"), pending.get("nonce")
        if not issuer or not nonce:
            return None  # not requested: an unsolicited id_token is not read
        granted = str(grant.get("scope") or pending.get("scope") or "").split()
        id_token = body.get("id_token")
        if id_token is None:
            if "openid" in granted:  # OpenID Connect Core 3.1.3.3: it MUST be there
                raise LaunchError("Sign-in failed", "the EHR granted openid but sent no "
                                  "id_token", status=502)
            return None
        identity = await self.openid.verify(
            id_token, issuer=str(issuer), client_id=self.auth.client_id, nonce=str(nonce),
            access_token=str(grant["access_token"]))
        if identity.fhir_user is None and "fhirUser" in granted:
            log.warning("id_token without fhirUser although the scope was granted")
        return identity

    # --- tokens ---------------------------------------------------------------------------

    async def access_token(self, session: Session, *, force: bool = False) -> str:
        """The session's access token, renewed with the refresh token when (nearly) expired
        or when ``force`` (the EHR answered 401)."""
        data = session.data
        if not force and float(data.get("expires_at", 0)) - launch.REFRESH_MARGIN > time.time():
            return str(data["access_token"])
        key = session.cookie
        lock = self._refresh_locks.setdefault(key, asyncio.Lock())
        async with lock:
            fresh = await run_in_threadpool(self.store.get, session.cookie)
            if fresh is not None and fresh.data.get("access_token") != data.get("access_token"):
                session.data = fresh.data  # another request renewed it meanwhile
                return str(fresh.data["access_token"])
            try:
                grant = await self._renewed(data)
            except LaunchError:
                # the EHR did not renew the access: the session is of no further use (its
                # tokens and the EHR decided that, not the request's parameters, so no
                # other site can end a session this way)
                await run_in_threadpool(self.store.delete, key)
                self._refresh_locks.pop(key, None)
                raise
            session.data = {**data, **grant}
            await run_in_threadpool(self.store.save, session)
            log.info("smart access token renewed")
            self._refresh_locks.pop(key, None)
            return str(session.data["access_token"])

    async def _renewed(self, data: dict[str, Any]) -> dict[str, Any]:
        refresh_token = data.get("refresh_token")
        if not refresh_token:
            raise LaunchError("Session expired", "the EHR access expired; launch the app "
                              "again from the EHR", status=401)
        body = await launch.refresh(self.http, self.auth,
                                    token_endpoint=str(data["token_endpoint"]),
                                    refresh_token=str(refresh_token))
        grant = launch.grant_from_token(body, previous=data)
        if grant["patient"] != data.get("patient"):
            raise LaunchError("Session expired", "the EHR changed the patient context",
                              status=401)
        return grant

    # --- sign-out -----------------------------------------------------------------------

    async def _revoke(self, tokens: dict[str, Any], endpoint: Any, token_endpoint: str
                      ) -> bool | None:
        """Revoke the refresh token first (RFC 7009 2.1: the EHR SHOULD then revoke the
        access tokens of the grant too), then the access token (in case it does not).
        None when the EHR has no revocation endpoint; else whether every call succeeded."""
        if not isinstance(endpoint, str) or not endpoint:
            return None
        results = []
        for hint in ("refresh_token", "access_token"):
            token = tokens.get(hint)
            if isinstance(token, str) and token:
                results.append(await launch.revoke(
                    self.http, self.auth, revocation_endpoint=endpoint,
                    token_endpoint=token_endpoint, token=token, hint=hint))
        return all(results)

    async def sign_out(self, session: Session) -> bool | None:
        """End ``session``: its tokens revoked at the EHR (when it offers revocation), the
        server-side session deleted.  None = the EHR offers no revocation endpoint; False =
        it could not be told (the access token then ends at its expiry)."""
        key = session.cookie
        async with self._refresh_locks.setdefault(key, asyncio.Lock()):
            # the latest tokens: a refresh may have rotated them since this request began
            fresh = await run_in_threadpool(self.store.get, key)
            data = fresh.data if fresh is not None else session.data
            revoked = await self._revoke(data, data.get("revocation_endpoint"),
                                         str(data.get("token_endpoint", "")))
            await run_in_threadpool(self.store.delete, key)
        self._refresh_locks.pop(key, None)
        log.info("smart session signed out", extra={"revoked": revoked})
        return revoked

    def reader(self, session: Session) -> FhirReader:
        async def token(force: bool) -> str:
            return await self.access_token(session, force=force)

        return FhirReader(self.http, str(session.data["iss"]), token)

    # --- viewer ---------------------------------------------------------------------------

    async def viewer_url(self, request: Request, session: Session, study_uids: list[str]
                         ) -> str:
        """Where opening ``study_uids`` goes: the configured template with the OHIF
        data-source path of the archive holding the (first) study as the patient's and, if
        the template asks for one, a viewer token for this session's patient only (the
        app's own OHIF fetches its tokens from /app/viewer-token instead).  With the
        gateway, a study that is not the patient's, or exists nowhere, raises
        :func:`~smart_app.launch.study_unavailable` (the app's own page, not OHIF's black
        "not available"; issue 20 item 8)."""
        token, source_path = "", ""
        gateway: ImagingGateway | None = getattr(request.app.state, "gateway", None)
        template = self.settings.viewer_url_template
        patient = str(session.data["patient"])
        if gateway is not None:
            source_path = await self._patients_archive(gateway, patient, study_uids)
        if gateway is not None and "{token}" in template:
            token = gateway.viewer.mint(patient=patient, session=session_id(session))
        return template.format(study_uids=quote(",".join(study_uids), safe=","),
                               token=quote(token, safe=""), data_source_path=source_path)

    @staticmethod
    async def _patients_archive(gateway: ImagingGateway, patient: str, study_uids: list[str]
                                ) -> str:
        """The data-source path of the archive holding the first study, every study checked
        to be the patient's (the gateway's compartment look-ups, cached for the viewer's
        own requests that follow).  When the EHR or an archive does not answer, the default
        archive (the gateway still refuses what is not the patient's)."""
        try:
            ids = await gateway.patients.identifiers_of(patient)
            routes = [await gateway.archives.holding(uid, ids) if ids else None
                      for uid in study_uids]
        except BridgeError as exc:
            log.warning("studies not checked before opening the viewer; opening the "
                        "default archive", extra={"error_type": exc.kind})
            return gateway.archives.default.data_source_path
        if not routes or any(r is None for r in routes):
            raise launch.study_unavailable()
        first = routes[0]
        assert first is not None
        return first.data_source_path
