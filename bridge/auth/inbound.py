"""Inbound credentials of system clients: bearer tokens (RFC 6750 2.1) and basic users
(RFC 7617) configured as :class:`~bridge.config.InboundAuthSettings`.

One check for every route that takes them (the STOW-RS proxy, the admin API), so they accept
and refuse exactly the same headers.
"""

from __future__ import annotations

import base64
import hmac

from bridge.config import InboundAuthSettings


def authenticate(header: str | None, auth: InboundAuthSettings) -> str | None:
    """The client's name when ``header`` carries configured credentials, else ``None``.

    Every candidate is compared in constant time, so timing tells nothing about which
    (or how much of a) credential matched.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        matched = None
        for n, token in enumerate(auth.bearer_tokens):
            if hmac.compare_digest(value.encode(), token.get_secret_value().encode()):
                matched = f"bearer-{n}"
        return matched
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:
            return None
        expected = auth.basic_users.get(user)
        if expected is not None and hmac.compare_digest(
            password.encode(), expected.get_secret_value().encode()
        ):
            return user
    return None
