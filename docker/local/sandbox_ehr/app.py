"""HTTP routes of the sandbox EHR (FastAPI): discovery (SMART and OpenID Connect),
authorize + consent, token, introspection, revocation, JWKS, the EHR launch page, the admin
API and the protected FHIR proxy."""

from __future__ import annotations

import contextlib
import html
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from .models import SandboxClient, Store, check_fhir_user
from .oauth import (
    ID_TOKEN_ALG,
    FormRequest,
    SmartServer,
    bearer_introspection,
    verify_access_token,
)
from .proxy import Denied, FhirProxy, classify, outcome

#: SMART 2.2 "Capabilities" (conformance.html).  Revocation has no capability code: SMART
#: lists it only as the optional ``revocation_endpoint``.  sso-openid-connect obliges
#: ``issuer``, ``jwks_uri`` and ``{issuer}/.well-known/openid-configuration``.
CAPABILITIES = [
    "launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
    "client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient",
    "context-banner", "context-style", "sso-openid-connect", "permission-offline",
    "permission-online", "permission-patient", "permission-user", "permission-v1",
    "permission-v2", "authorize-post", "smart-imaging-access",
]
SCOPES_SUPPORTED = ["openid", "fhirUser", "launch", "launch/patient", "offline_access",
                    "online_access", "patient/*.rs", "user/*.rs", "system/*.cruds"]
TOKEN_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post"]


class ClientIn(BaseModel):
    client_id: str
    redirect_uris: list[str] = []
    jwks: dict[str, Any] | None = None
    secret: str | None = None
    allowed_scopes: list[str] | None = None
    launch_url: str | None = None
    name: str = ""


class SwitchesIn(BaseModel):
    token_lifetime: int | None = None
    fail_client_auth: bool | None = None
    introspection_auth: Literal["client", "bearer"] | None = None
    fhir_user: str | None = None


def smart_configuration(server: SmartServer, base_url: str) -> dict[str, Any]:
    """SMART App Launch 2.2 "Conformance" (.well-known/smart-configuration)."""
    return {
        "issuer": server.issuer,
        "jwks_uri": f"{base_url}/jwks.json",
        "authorization_endpoint": f"{base_url}/authorize",
        "token_endpoint": server.token_url,
        "introspection_endpoint": f"{base_url}/introspect",
        "revocation_endpoint": f"{base_url}/revoke",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(server: SmartServer, base_url: str) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0, 3 (``{issuer}/.well-known/openid-configuration``): the
    REQUIRED members, and the ones a SMART app uses to check an id_token."""
    return {
        "issuer": server.issuer,
        "authorization_endpoint": f"{base_url}/authorize",
        "token_endpoint": server.token_url,
        "jwks_uri": f"{base_url}/jwks.json",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG],
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
                             "at_hash", "fhirUser"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": [*TOKEN_AUTH_METHODS, "none"],
        "code_challenge_methods_supported": ["S256"],
        "revocation_endpoint": f"{base_url}/revoke",
        "introspection_endpoint": f"{base_url}/introspect",
    }


def _form_request(request: Request, form: dict[str, str]) -> FormRequest:
    return FormRequest(request.method, str(request.url), request.headers,
                       request.query_params, form)


def _hidden(params: dict[str, str]) -> str:
    return "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                   for k, v in params.items() if k not in ("patient", "decision"))


async def _patients(hapi: httpx.AsyncClient, upstream: str) -> list[tuple[str, str]]:
    resp = await hapi.get(f"{upstream}/Patient",
                          params={"_count": "50", "_sort": "-_lastUpdated"})
    out = []
    for e in resp.json().get("entry", []) if resp.status_code == 200 else []:
        res = e.get("resource", {})
        name = (res.get("name") or [{}])[0]
        label = " ".join([*name.get("given", []), name.get("family", "")]).strip()
        out.append((str(res.get("id")), label or str(res.get("id"))))
    return out


def create_app(*, server: SmartServer, store: Store, base_url: str, upstream: str,
               auto_approve: bool = False, default_patient: str | None = None) -> FastAPI:
    fhir_url = base_url + "/fhir"
    holder: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=120) as client:
            holder["hapi"] = client
            holder["proxy"] = FhirProxy(upstream, fhir_url, client)
            yield

    app = FastAPI(title="sandbox EHR", lifespan=lifespan)

    def error_response(request: FormRequest, exc: OAuth2Error) -> Response:
        response: Response = server.handle_error_response(request, exc)
        return response

    # --- discovery and keys ---------------------------------------------------------------

    @app.get("/.well-known/smart-configuration")
    @app.get("/fhir/.well-known/smart-configuration")
    async def discovery() -> dict[str, Any]:
        return smart_configuration(server, base_url)

    @app.get("/.well-known/openid-configuration")
    async def openid_discovery() -> dict[str, Any]:
        return openid_configuration(server, base_url)

    @app.get("/jwks.json")
    async def jwks() -> dict[str, Any]:
        return {"keys": [{**key.as_dict(private=False), "alg": "RS256", "use": "sig"}
                         for key in server.verification_keys().keys]}

    # --- authorization endpoint (RFC 6749 4.1.1, SMART 2.2 "Authorization code") -----------

    async def authorize(request: Request, form: dict[str, str]) -> Response:
        req = _form_request(request, form)
        params = {**dict(request.query_params), **form}
        try:
            # validates the whole request; the tester is always signed in at the sandbox
            grant = server.get_consent_grant(req, end_user=store.switches.user())
        except OAuth2Error as exc:
            exc.state = params.get("state")
            return error_response(req, exc)
        scopes = (req.scope or "").split()
        needs_pick = "launch/patient" in scopes and "launch" not in scopes
        patient = params.get("patient") or (default_patient if needs_pick else None)
        decided = params.get("decision") in ("approve", "deny")
        if not decided and not (auto_approve and (patient or not needs_pick)):
            return HTMLResponse(await _consent_page(params, scopes, needs_pick))
        if params.get("decision") == "deny":
            resp: Response = server.create_authorization_response(req, grant_user=None,
                                                                  grant=grant)
            return resp
        if needs_pick and not patient:
            return HTMLResponse("a patient must be picked for launch/patient", 400)
        user = store.switches.user(patient=patient if needs_pick else None)
        resp = server.create_authorization_response(req, grant_user=user, grant=grant)
        return resp

    async def _consent_page(params: dict[str, str], scopes: list[str], pick: bool) -> str:
        picker = ""
        if pick:
            options = "".join(f'<option value="{html.escape(pid)}">{html.escape(label)}'
                              f" ({html.escape(pid)})</option>"
                              for pid, label in await _patients(holder["hapi"], upstream))
            picker = f'<label>Patient <select name="patient">{options}</select></label>'
        items = "".join(f"<li>{html.escape(s)}</li>" for s in scopes)
        return (f"<!doctype html><title>Sandbox EHR - authorize</title>"
                f"<h1>{html.escape(params.get('client_id', ''))} asks for</h1><ul>{items}</ul>"
                f'<form method="post" action="{base_url}/authorize">{_hidden(params)}{picker}'
                '<button name="decision" value="approve">Approve</button>'
                '<button name="decision" value="deny">Deny</button></form>')

    @app.get("/authorize")
    async def authorize_get(request: Request) -> Response:
        return await authorize(request, {})

    @app.post("/authorize")
    async def authorize_post(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        return await authorize(request, form)

    # --- token and introspection ----------------------------------------------------------

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        resp: Response = server.create_token_response(_form_request(request, form))
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Pragma"] = "no-cache"
        return resp

    @app.post("/introspect")
    async def introspect(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        if store.switches.introspection_auth == "bearer":
            status, body, headers = bearer_introspection(
                server, request.headers.get("authorization", ""), form.get("token", ""))
            return Response(json.dumps(body), status, headers=headers,
                            media_type="application/json")
        resp: Response = server.create_endpoint_response(
            "introspection", _form_request(request, form))
        return resp

    @app.post("/revoke")
    async def revoke(request: Request) -> Response:
        """RFC 7009 2.1: ``token`` and an optional ``token_type_hint``; 200 also for an
        unknown or already revoked token (2.2)."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        resp: Response = server.create_endpoint_response(
            "revocation", _form_request(request, form))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    # --- EHR launch page (SMART 2.2 "EHR launch") -----------------------------------------

    @app.get("/launch", response_class=HTMLResponse)
    async def launch_page() -> str:
        apps = "".join(f'<option value="{html.escape(c.client_id)}">'
                       f"{html.escape(c.name or c.client_id)}</option>"
                       for c in store.clients.values() if c.launch_url)
        patients = "".join(f'<option value="{html.escape(pid)}">{html.escape(label)}</option>'
                           for pid, label in await _patients(holder["hapi"], upstream))
        return ("<!doctype html><title>Sandbox EHR - launch</title><h1>Launch an app</h1>"
                f'<form method="post" action="{base_url}/launch">'
                f'<label>App <select name="client_id">{apps}</select></label>'
                f'<label>Patient <select name="patient">{patients}</select></label>'
                "<button>Launch</button></form>")

    @app.post("/launch")
    async def launch(request: Request) -> Response:
        form = await request.form()
        client = store.clients.get(str(form.get("client_id")))
        patient = str(form.get("patient") or "")
        if client is None or not client.launch_url or not patient:
            return HTMLResponse("unknown app or no patient", 400)
        launch_id = store.new_launch(patient)
        return RedirectResponse(
            f"{client.launch_url}?{urlencode({'iss': fhir_url, 'launch': launch_id})}", 302)

    # --- admin API (tests and the demo) ---------------------------------------------------

    @app.post("/admin/clients")
    async def register_client(body: ClientIn) -> dict[str, str]:
        with store.lock:
            store.clients[body.client_id] = SandboxClient(**body.model_dump())
        return {"client_id": body.client_id}

    @app.post("/admin/launches")
    async def new_launch(body: dict[str, str]) -> dict[str, str]:
        return {"launch": store.new_launch(body["patient"])}

    @app.post("/admin/switches", response_model=None)
    async def switches(body: SwitchesIn) -> Response | dict[str, Any]:
        if body.fhir_user is not None:
            try:
                check_fhir_user(body.fhir_user)
            except ValueError as exc:
                return HTMLResponse(str(exc), 400)
        with store.lock:
            for key, value in body.model_dump(exclude_none=True).items():
                setattr(store.switches, key, value)
            return dict(vars(store.switches))

    @app.post("/admin/expire-tokens")
    async def expire_tokens() -> dict[str, int]:
        return {"expired": expire_all_access_tokens(store)}

    @app.post("/admin/revoke-refresh-tokens")
    async def revoke_refresh() -> dict[str, int]:
        return {"revoked": revoke_all_refresh_tokens(store)}

    # --- protected FHIR endpoint ----------------------------------------------------------

    @app.api_route("/fhir", methods=["GET", "POST"])
    @app.api_route("/fhir/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def fhir(request: Request, path: str = "") -> Response:
        proxy: FhirProxy = holder["proxy"]
        body = await request.body()
        if path in ("metadata",) and request.method == "GET":
            return await proxy.forward_public(request, path)
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return outcome(401, "login", "a bearer token is required",
                           challenge=f'Bearer realm="{fhir_url}"')
        record = verify_access_token(server, auth[7:].strip())
        if record is None:
            with store.lock:
                store.refused_tokens += 1
            return outcome(401, "login", "the access token is invalid, expired or revoked",
                           challenge='Bearer error="invalid_token"')
        if request.method == "GET" and not path and proxy.page_allowed(
                request.url.query, record):
            # next page of a search already checked for this token (R4 3.1.0.1.3 paging)
            return await proxy.forward(request, path, body, record, verify_patient=False)
        try:
            parsed = None
            if body and "json" in request.headers.get("content-type", ""):
                parsed = json.loads(body)
            interactions = classify(request.method, path, request.url.query, parsed)
            verify = proxy.check(record, interactions)
        except Denied as exc:
            challenge = 'Bearer error="insufficient_scope"' if exc.status == 403 else None
            return outcome(exc.status, exc.code, exc.message, challenge=challenge)
        except ValueError:
            return outcome(400, "invalid", "request body is not JSON")
        return await proxy.forward(request, path, body, record, verify_patient=bool(verify))

    return app


def expire_all_access_tokens(store: Store) -> int:
    """Simulate expiry: every access token issued so far stops working now."""
    now = int(time.time())
    with store.lock:
        live = [r for r in store.access.values() if r.exp > now]
        for r in live:
            r.exp = now
    return len(live)


def revoke_all_refresh_tokens(store: Store) -> int:
    with store.lock:
        live = [r for r in store.refresh.values() if not r.revoked]
        for r in live:
            r.revoked = True
    return len(live)
