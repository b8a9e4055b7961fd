"""Inbound credentials (``bridge.auth.inbound``): one check shared by the STOW-RS proxy and
the admin API, so both accept and refuse exactly the same headers."""

from __future__ import annotations

import base64

from pydantic import SecretStr

from bridge.config import InboundAuthSettings

AUTH = InboundAuthSettings(bearer_tokens=[SecretStr("a" * 20), SecretStr("b" * 20)],
                           basic_users={"modality": SecretStr("p" * 20)})


def _basic(pair: bytes) -> str:
    return "Basic " + base64.b64encode(pair).decode()


def test_configured_credentials_name_their_client() -> None:
    from bridge.auth.inbound import authenticate

    assert authenticate("Bearer " + "b" * 20, AUTH) == "bearer-1"
    assert authenticate("bearer " + "a" * 20, AUTH) == "bearer-0"
    assert authenticate(_basic(b"modality:" + b"p" * 20), AUTH) == "modality"


def test_anything_else_is_refused() -> None:
    from bridge.auth.inbound import authenticate

    for header in (None, "", "Bearer", "Bearer " + "c" * 20, _basic(b"modality:wrong"),
                   _basic(b"nobody:" + b"p" * 20), "Basic !!!", _basic(b"\xff\xfe:x"),
                   "Digest " + "a" * 20):
        assert authenticate(header, AUTH) is None, header


def test_the_stow_proxy_and_the_admin_api_share_the_one_check() -> None:
    from bridge.api import admin_auth
    from bridge.auth import inbound
    from bridge.realtime import stow_proxy

    # the name each module calls (neither re-exports it)
    assert vars(admin_auth)["authenticate"] is inbound.authenticate
    assert vars(stow_proxy)["authenticate"] is inbound.authenticate
