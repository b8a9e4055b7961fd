"""``api.admin_auth``, ``api.admin_host`` and ``api.admin_port`` (issue 12 item 6)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bridge.api.app import create_listeners
from bridge.config import ApiSettings, InboundAuthSettings, Settings


def test_admin_auth_defaults_to_closed_and_none_must_be_said() -> None:
    assert ApiSettings().admin_auth == InboundAuthSettings()
    assert ApiSettings(admin_auth="none").admin_auth == "none"
    with pytest.raises(ValidationError):
        ApiSettings(admin_auth="off")


def test_admin_auth_none_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_API__ADMIN_AUTH", "none")
    assert Settings().api.admin_auth == "none"


@pytest.mark.parametrize("auth", [
    {"bearer_tokens": ["short"]}, {"bearer_tokens": ["changeme"]},
    {"basic_users": {"ops": "password"}},
])
def test_weak_admin_credentials_are_refused(auth: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ApiSettings(admin_auth=auth)


@pytest.mark.parametrize(("api", "message"), [
    ({"admin_host": "10.0.0.1"}, "admin_host needs api.admin_port"),
    ({"port": 8400, "admin_port": 8400}, "must differ"),
    ({"host": "0.0.0.0", "port": 8400, "admin_host": "0.0.0.0", "admin_port": 8400},
     "must differ"),
])
def test_an_admin_listener_must_be_a_listener_of_its_own(api: dict[str, Any],
                                                         message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ApiSettings(**api)


def test_listeners_one_by_default_two_with_an_admin_port() -> None:
    [one] = create_listeners(Settings(), run_sync=False)
    assert (one.name, one.host, one.port) == ("public", "127.0.0.1", 8400)
    public, admin = create_listeners(
        Settings(api={"host": "0.0.0.0", "admin_host": "127.0.0.1", "admin_port": 9400}),
        run_sync=False)
    assert (public.host, public.port, admin.name, admin.host, admin.port) == (
        "0.0.0.0", 8400, "admin", "127.0.0.1", 9400)
    same_host = create_listeners(Settings(api={"admin_port": 9400}), run_sync=False)[1]
    assert (same_host.host, same_host.port) == ("127.0.0.1", 9400)
