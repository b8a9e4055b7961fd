"""``SandboxEhr``: start the sandbox on a free loopback port in a background thread.

    ehr = SandboxEhr(hapi_fhir_url).start()
    ehr.register_client("bridge-sync", jwks=public_jwks, allowed_scopes=[...])
    ... use ehr.fhir_url (protected FHIR base) / ehr.base_url / ehr.issuer ...
    ehr.stop()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import httpx
import uvicorn
from joserfc.jwk import RSAKey

from .app import create_app, expire_all_access_tokens, revoke_all_refresh_tokens
from .models import DEFAULT_FHIR_USER, SandboxClient, Store, check_fhir_user
from .oauth import SmartServer, build_server

# authlib refuses http:// URLs unless told otherwise; the sandbox only listens on loopback
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
# authlib logs issued tokens at DEBUG; an EHR would not, and the bridge's tests check that
# no token reaches the logs, so keep authlib's server side at INFO
logging.getLogger("authlib").setLevel(logging.INFO)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class SandboxEhr:
    """A SMART authorization server and protected FHIR proxy in front of ``upstream_fhir``.

    :param upstream_fhir: the real FHIR server (HAPI) base, e.g. ``http://127.0.0.1:8080/fhir``
    :param token_lifetime: access token lifetime in seconds (short values test renewal)
    :param auto_approve: issue the code without the consent page when nothing must be picked
    :param default_patient: patient chosen automatically in standalone launch (auto_approve)
    :param fhir_user: the user the sandbox simulates, as the id_token's ``fhirUser``: a
        ``Practitioner/...`` (an EHR user, the default) or e.g. a ``Patient/...`` (a portal)
    :param clients: clients registered from the start
    """

    def __init__(self, upstream_fhir: str, *, host: str = "127.0.0.1", port: int = 0,
                 token_lifetime: int = 3600, auto_approve: bool = False,
                 default_patient: str | None = None, fhir_user: str = DEFAULT_FHIR_USER,
                 clients: list[SandboxClient] | None = None) -> None:
        self.upstream_fhir = upstream_fhir.rstrip("/")
        self.host = host
        self.port = port or _free_port(host)
        self.base_url = f"http://{host}:{self.port}"
        self.fhir_url = self.base_url + "/fhir"
        self.issuer = self.base_url
        self.token_url = self.base_url + "/token"
        self.authorize_url = self.base_url + "/authorize"
        self.introspection_url = self.base_url + "/introspect"
        self.revocation_url = self.base_url + "/revoke"
        self.openid_configuration_url = self.issuer + "/.well-known/openid-configuration"
        self.jwks_url = self.base_url + "/jwks.json"
        self.launch_page_url = self.base_url + "/launch"
        self.store = Store()
        self.store.switches.token_lifetime = token_lifetime
        self.store.switches.fhir_user = check_fhir_user(fhir_user)
        for client in clients or []:
            self.store.clients[client.client_id] = client
        self.server: SmartServer = build_server(
            self.store, issuer=self.issuer, fhir_url=self.fhir_url, token_url=self.token_url,
            signing_key=RSAKey.generate_key(2048, private=True, auto_kid=True))
        self.app = create_app(server=self.server, store=self.store, base_url=self.base_url,
                              upstream=self.upstream_fhir, auto_approve=auto_approve,
                              default_patient=default_patient)
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> SandboxEhr:
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                access_log=False, lifespan="on")
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._uvicorn.run, name="sandbox-ehr",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"sandbox EHR did not start on {self.base_url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._uvicorn = self._thread = None

    def __enter__(self) -> SandboxEhr:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration (also available over HTTP under /admin) ------------------------------

    def register_client(self, client_id: str, *, redirect_uris: list[str] | None = None,
                        jwks: dict[str, Any] | None = None, secret: str | None = None,
                        allowed_scopes: list[str] | None = None,
                        launch_url: str | None = None, name: str = "") -> SandboxClient:
        client = SandboxClient(client_id=client_id, redirect_uris=list(redirect_uris or []),
                               jwks=jwks, secret=secret, allowed_scopes=allowed_scopes,
                               launch_url=launch_url, name=name)
        with self.store.lock:
            self.store.clients[client_id] = client
        return client

    def new_launch(self, patient: str, fhir_context: tuple[str, ...] = ()) -> str:
        """An opaque EHR launch id bound to ``patient`` (as the launch page creates), and
        optionally to a ``fhirContext`` such as ``("ImagingStudy/123",)``."""
        return self.store.new_launch(patient, fhir_context)

    def launch_url_for(self, client_id: str, patient: str,
                       fhir_context: tuple[str, ...] = ()) -> str:
        """The app launch URL with ``iss`` and ``launch``, as the EHR launch page opens it."""
        client = self.store.clients[client_id]
        if not client.launch_url:
            raise ValueError(f"client {client_id} has no launch_url")
        q = httpx.QueryParams({"iss": self.fhir_url,
                               "launch": self.new_launch(patient, fhir_context)})
        return f"{client.launch_url}?{q}"

    # --- error simulation -------------------------------------------------------------------

    def set_token_lifetime(self, seconds: int) -> None:
        self.store.switches.token_lifetime = seconds

    def set_fhir_user(self, reference: str) -> None:
        """Simulate another user from the next authorization on (``fhirUser`` of the
        id_token), e.g. ``Patient/123`` for a patient portal."""
        self.store.switches.fhir_user = check_fhir_user(reference)

    def fail_client_auth(self, on: bool = True) -> None:
        """Every client authentication at the token endpoint fails with invalid_client."""
        self.store.switches.fail_client_auth = on

    def require_bearer_introspection(self, on: bool = True) -> None:
        """``/introspect`` authenticates the resource server by a bearer token (an active
        access token of this sandbox without patient context) instead of client
        authentication, as SMART App Launch 2.2's introspection example does."""
        self.store.switches.introspection_auth = "bearer" if on else "client"

    def expire_tokens(self) -> int:
        """Every access token issued so far is expired from now on."""
        return expire_all_access_tokens(self.store)

    def rotate_signing_key(self, *, keep_old: bool = True) -> str:
        """New access tokens are signed with a fresh key; returns its kid.  The old key stays
        in the JWKS unless ``keep_old`` is False (then it is withdrawn, as after a
        compromise, together with any earlier retired keys)."""
        return str(self.server.rotate_signing_key(keep_old=keep_old).kid)

    def revoke_refresh_tokens(self) -> int:
        return revoke_all_refresh_tokens(self.store)

    def introspect(self, token: str) -> dict[str, Any]:
        """Introspection of an access or refresh token without client authentication (for
        tests)."""
        from .oauth import Introspection

        endpoint = Introspection(self.server)
        found = endpoint.query_token(token, None)
        if found is None:
            return {"active": False}
        payload: dict[str, Any] = endpoint.introspect_token(found)
        return payload
