"""Fixtures giving integration tests the real servers.

Session-scoped ``orthanc``, ``postgres`` and ``hapi`` start each server once per pytest
session, only when a test asks for it, and stop it at the end (see docker/local/devstack.py).

With ``BRIDGE_TEST_STACK=.run/stack.json`` (written by ``python docker/local/devstack.py up``)
the servers described there are reused instead; a component missing from that file is
started locally as usual.

Tests share the servers, so each test works in its own namespace: ``ns`` gives a unique
token, patient IDs and UIDs, and tests must only look at data they created with them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import devstack
import pytest

from tests.support.settings import pg_schema

REPO_ROOT = Path(__file__).resolve().parents[2]


def _running(server: Any, *start_args: Any) -> Iterator[Any]:
    """``server`` started, and stopped once the fixture's scope ends."""
    server.start(*start_args)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stack_state() -> dict[str, Any]:
    """Endpoints of an already-running stack (``BRIDGE_TEST_STACK``), or ``{}``."""
    path = os.environ.get("BRIDGE_TEST_STACK")
    return devstack.load_state(path) if path else {}


@pytest.fixture(scope="session")
def orthanc(stack_state: dict[str, Any]) -> Iterator[devstack.Orthanc | devstack.OrthancEndpoint]:
    """Orthanc + DICOMweb: ``base_url``, ``dicomweb_url``, ``username``, ``password``, ``auth``."""
    if "orthanc" in stack_state:
        yield stack_state["orthanc"]
        return
    yield from _running(devstack.Orthanc())


@pytest.fixture
def orthanc_factory() -> Iterator[Callable[..., devstack.Orthanc]]:
    """Start extra Orthanc servers with custom options (e.g. ``notify_lua_script=``) for one
    test; they are stopped when the test ends."""
    started: list[devstack.Orthanc] = []

    def make(**kwargs: Any) -> devstack.Orthanc:
        server = devstack.Orthanc(**kwargs)
        started.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture(scope="module")
def own_orthanc() -> Iterator[devstack.Orthanc]:
    """An Orthanc for one test module, in place of the shared one, for modules that store
    broken studies on purpose or expect a whole-archive backfill without failures (other
    tests leave broken or unseeded studies in the shared archive): such a module defines a
    module-scoped ``orthanc`` fixture returning this one; or a second archive beside the
    shared one."""
    yield from _running(devstack.Orthanc())


@pytest.fixture(scope="session")
def postgres(
    stack_state: dict[str, Any],
) -> Iterator[devstack.Postgres | devstack.PostgresEndpoint]:
    """PostgreSQL 15: ``url`` (``postgresql+psycopg://bridge:...@127.0.0.1:PORT/bridge``)."""
    if "postgres" in stack_state:
        yield stack_state["postgres"]
        return
    yield from _running(devstack.Postgres())


@pytest.fixture
def pg_schema_url(postgres: Any) -> Iterator[str]:
    """:func:`pg_schema` for one test."""
    with pg_schema(postgres) as url:
        yield url


@pytest.fixture(scope="session")
def hapi(stack_state: dict[str, Any]) -> Iterator[devstack.Hapi | devstack.HapiEndpoint]:
    """HAPI FHIR R4 JPA server: ``fhir_url`` (``http://127.0.0.1:PORT/fhir``).

    The jar comes from ``BRIDGE_HAPI_JAR`` or from ``bash docker/hapi/build.sh``; start-up
    may take ``BRIDGE_HAPI_START_TIMEOUT`` seconds (default 450).
    """
    if "hapi" in stack_state:
        yield stack_state["hapi"]
        return
    jar_env = os.environ.get("BRIDGE_HAPI_JAR")
    jar = Path(jar_env) if jar_env else devstack.build_hapi_jar(REPO_ROOT)
    # Several JVMs on 2 cores can take HAPI well past its ~100 s idle start-up.
    yield from _running(devstack.Hapi(jar, extra_args=devstack.HAPI_STACK_ARGS),
                        float(os.environ.get("BRIDGE_HAPI_START_TIMEOUT", "450")))


class Namespace:
    """Unique identifiers for one test, so tests sharing a server never see each other's data."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:10]

    def patient_id(self, n: int = 1) -> str:
        return f"PAT-{self.token}-{n}"

    def accession(self, n: int = 1) -> str:
        return f"ACC-{self.token}-{n}"

    def name(self, prefix: str, n: int = 1) -> str:
        """Any other unique value, e.g. ``ns.name("enc")`` -> ``enc-<token>-1``."""
        return f"{prefix}-{self.token}-{n}"

    @staticmethod
    def uid() -> str:
        """A fresh DICOM UID under the UUID-derived root ``2.25`` (always <= 64 chars)."""
        return f"2.25.{uuid.uuid4().int}"

    def __repr__(self) -> str:
        return f"Namespace(token={self.token!r})"


@pytest.fixture
def ns() -> Namespace:
    return Namespace()
