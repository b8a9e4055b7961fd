"""Security headers on every HTTP response of the service (issue 12 item 8): the SMART app's
pages, OHIF, the DICOMweb gateway, IID, the STOW proxy and the admin routes alike.

* ``Content-Security-Policy`` (CSP Level 3): a route may send its own policy (OHIF's, see
  :mod:`smart_app.viewer`); every other response gets :data:`DEFAULT_POLICY` (scripts and
  styles from this origin only, no plugins, no ``<base>``, forms to this origin).  Either
  way ``frame-ancestors`` is this service's, from ``api.frame_ancestors``: an EHR embeds
  SMART apps in an iframe, so its origins may be allowed, and no one else may frame the app
  (clickjacking of the sign-out button or the viewer).
* ``X-Frame-Options`` (RFC 7034) for browsers without CSP Level 2: ``SAMEORIGIN`` for
  ``'self'`` and ``DENY`` for ``'none'``; left out when EHR origins are allowed, because
  it cannot name them (``ALLOW-FROM`` is obsolete and ignored) and would forbid the very
  framing configured (CSP Level 3 6.4.2: browsers with ``frame-ancestors`` ignore it).
* ``X-Content-Type-Options: nosniff``: a DICOM or JSON body is never run as a script.
* ``Referrer-Policy: no-referrer``: a viewer URL can carry a token until OHIF strips it
  (``/viewer/viewer?...&token=``); no address of this service is sent to another site.

A plain ASGI middleware (not ``BaseHTTPMiddleware``): streamed bodies (WADO-RS studies)
pass through untouched; only the start of each response is edited.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: the policy of every response that sends none of its own: the SMART app's pages (their
#: one script is a file of this origin; inline ``style`` attributes position the timeline)
DEFAULT_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                  "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
                  "manifest-src 'self'; form-action 'self'; base-uri 'none'")


def frame_ancestors(sources: Sequence[str]) -> str:
    """The ``frame-ancestors`` directive for the (validated) ``api.frame_ancestors``."""
    return "frame-ancestors " + " ".join(sources)


def x_frame_options(sources: Sequence[str]) -> str | None:
    """RFC 7034's equivalent of ``sources``, when it has one."""
    if list(sources) == ["'none'"]:
        return "DENY"
    if list(sources) == ["'self'"]:
        return "SAMEORIGIN"
    return None


class SecurityHeaders:
    """Adds the headers above to every HTTP response of ``app``."""

    def __init__(self, app: ASGIApp, *, frame_sources: Sequence[str] = ("'self'",)) -> None:
        if not frame_sources:
            raise ValueError("frame_sources: at least one source ('none' forbids framing)")
        self.app = app
        self._ancestors = frame_ancestors(frame_sources)
        self._fixed = [("X-Content-Type-Options", "nosniff"),
                       ("Referrer-Policy", "no-referrer")]
        xfo = x_frame_options(frame_sources)
        if xfo is not None:
            self._fixed.append(("X-Frame-Options", xfo))

    def policy(self, own: str | None) -> str:
        """The route's own policy (or the default) with this service's frame-ancestors."""
        directives = [d.strip() for d in (own or DEFAULT_POLICY).split(";") if d.strip()]
        kept = [d for d in directives if d.split()[0].lower() != "frame-ancestors"]
        return "; ".join([*kept, self._ancestors])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = self.policy(
                    headers.get("content-security-policy"))
                for name, value in self._fixed:
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
