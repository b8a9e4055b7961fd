"""Every exception class of ``bridge`` and ``smart_app`` is in the one tree of
:mod:`bridge.errors`, under exactly one branch: the branch is the action (issue 18, "One
error tree whose branches are the action")."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest
from starlette.exceptions import HTTPException

import bridge
import smart_app
from bridge.errors import BridgeError, Outage, Permanent, Retryable, Waiting

BRANCHES = (Retryable, Waiting, Permanent)

#: modules that cannot be imported on their own
NOT_IMPORTABLE = {
    # Alembic's environment script: it reads ``alembic.context.config``, set only while
    # Alembic runs a migration
    "bridge.state.migrations.env",
}

#: framework control flow rather than errors of ours, each with why
NOT_ERRORS = {
    # an HTTPException so that Starlette answers it from inside ``receive``; it carries the
    # RequestTooLarge (Permanent, 413) it is made from, and must not be caught by a route's
    # ``except BridgeError``
    "bridge.httpbody._Overflow",
    # the UPS-RS routes' early answer: carries a ready Response (401, 503, 400) out of the
    # route's helpers to the route, which returns it; never leaves the route
    "bridge.api.routes.workitems._Refused",
}


def _modules() -> list[ModuleType]:
    modules = []
    for package in (bridge, smart_app):
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name not in NOT_IMPORTABLE:
                modules.append(importlib.import_module(info.name))
    return modules


def _exceptions() -> list[type[BaseException]]:
    found = {
        obj
        for module in _modules()
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
        and obj.__module__ == module.__name__
    }
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_exception_of_ours_is_under_exactly_one_branch() -> None:
    found = _exceptions()
    assert len(found) > 30, "the walk found too few exceptions: has the package moved?"
    outside = [_name(c) for c in found
               if not issubclass(c, BridgeError) and _name(c) not in NOT_ERRORS]
    assert outside == [], f"exceptions outside the tree of bridge.errors: {outside}"
    wrong = {
        _name(c): [b.__name__ for b in BRANCHES if issubclass(c, b)]
        for c in found
        if issubclass(c, BridgeError) and c not in (BridgeError, *BRANCHES)
        and sum(issubclass(c, b) for b in BRANCHES) != 1
    }
    assert wrong == {}, f"not under exactly one of Retryable/Waiting/Permanent: {wrong}"


def test_the_exemptions_still_exist_and_are_framework_answers() -> None:
    exempt = [c for c in _exceptions() if _name(c) in NOT_ERRORS]
    assert sorted(_name(c) for c in exempt) == sorted(NOT_ERRORS)
    assert all(issubclass(c, HTTPException) for c in exempt)
    for name in NOT_IMPORTABLE:
        with pytest.raises(Exception):  # noqa: B017 - the reason it is listed
            importlib.import_module(name)


def test_kinds_are_distinct_so_records_and_metrics_say_which_error() -> None:
    kinds: dict[str, str] = {}
    for cls in _exceptions():
        if issubclass(cls, BridgeError):
            assert "kind" in vars(cls), f"{_name(cls)} inherits its kind"
            assert cls.kind not in kinds, f"{_name(cls)} reuses {kinds.get(cls.kind)}'s kind"
            kinds[cls.kind] = _name(cls)


def test_waiting_for_the_servers_of_the_gateway_is_an_outage_answered_503() -> None:
    from bridge.errors import ArchiveUnavailable, AuthError, FhirBusy
    from bridge.gateway.errors import Forbidden, InvalidToken, TokenServiceUnavailable

    for outage in (ArchiveUnavailable, FhirBusy, TokenServiceUnavailable):
        assert issubclass(outage, Outage) and outage.http_status == 503
    assert TokenServiceUnavailable("down").retry_after == 5.0
    # a client's token is its own problem; our credentials refused wait for an administrator
    for refusal in (InvalidToken, Forbidden):
        assert issubclass(refusal, Permanent) and not issubclass(refusal, AuthError)
    assert issubclass(AuthError, Waiting)
