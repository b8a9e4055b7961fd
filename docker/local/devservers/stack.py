"""The dev stack: any subset of Orthanc, PostgreSQL and HAPI FHIR, started and stopped together,
and the state file (URLs and credentials) through which other processes reuse it.

Environment: ``BRIDGE_HAPI_JAR`` (use this jar instead of running ``docker/hapi/build.sh``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from devservers.hapi import STACK_ARGS, Hapi, HapiEndpoint, build_hapi_jar, hapi_start_timeout
from devservers.orthanc import Orthanc, OrthancEndpoint
from devservers.postgres import Postgres, PostgresEndpoint
from devservers.process import Service

__all__ = ["ALL_COMPONENTS", "Stack", "load_state"]

ALL_COMPONENTS: frozenset[str] = frozenset({"orthanc", "hapi", "postgres"})
_DEFAULT_TIMEOUTS = {"orthanc": 60.0, "postgres": 60.0}


class Stack:
    """Any subset of Orthanc, PostgreSQL and HAPI FHIR, started and stopped together."""

    def __init__(
        self,
        *,
        repo_root: Path | None = None,
        hapi_jar: Path | None = None,
        notify_lua_script: Path | None = None,
        hapi_timeout: float | None = None,
    ) -> None:
        self.repo_root = repo_root or Path(__file__).resolve().parents[3]
        self.hapi_timeout = hapi_timeout
        self.hapi_jar = hapi_jar
        self.notify_lua_script = notify_lua_script
        self.orthanc: Orthanc | None = None
        self.postgres: Postgres | None = None
        self.hapi: Hapi | None = None

    def services(self) -> list[Service]:
        return [s for s in (self.hapi, self.orthanc, self.postgres) if s is not None]

    def start(self, components: Iterable[str] = ALL_COMPONENTS) -> Self:
        wanted = set(components)
        unknown = wanted - ALL_COMPONENTS
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}; use {sorted(ALL_COMPONENTS)}")
        try:
            # Spawn everything first (HAPI is slow), then wait for each one.
            if "hapi" in wanted:
                jar = (
                    self.hapi_jar or _env_path("BRIDGE_HAPI_JAR") or build_hapi_jar(self.repo_root)
                )
                self.hapi = Hapi(jar, extra_args=STACK_ARGS)
                self.hapi.launch()
            if "orthanc" in wanted:
                self.orthanc = Orthanc(notify_lua_script=self.notify_lua_script)
                self.orthanc.launch()
            if "postgres" in wanted:
                self.postgres = Postgres()
                self.postgres.launch()
            # Fast ones first, so each startup_seconds is measured while the others boot.
            for service in (self.orthanc, self.postgres, self.hapi):
                if service is not None:
                    if service is self.hapi:
                        timeout = self.hapi_timeout or hapi_start_timeout()
                    else:
                        timeout = _DEFAULT_TIMEOUTS[service.name]
                    service.wait_ready_or_relaunch(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for service in reversed(self.services()):
            service.stop()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"pid": os.getpid()}
        if self.orthanc is not None:
            data["orthanc"] = _service_state(self.orthanc, self.orthanc.endpoint())
        if self.postgres is not None:
            data["postgres"] = _service_state(self.postgres, self.postgres.endpoint())
        if self.hapi is not None:
            data["hapi"] = _service_state(self.hapi, self.hapi.endpoint(), jar=str(self.hapi.jar))
        return data

    def write_state(self, path: str | os.PathLike[str]) -> Path:
        """Write URLs and credentials as JSON (mode 0600, written atomically)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.to_json(), fh, indent=2)
            fh.write("\n")
        tmp.replace(target)
        return target

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _service_state(service: Service, endpoint: Any, **extra: str) -> dict[str, Any]:
    """A service's state-file entry: its endpoint's fields (what :func:`load_state` reads
    back), then ``extra``, its pid, log and start-up time."""
    return {
        **dataclasses.asdict(endpoint),
        **extra,
        "pid": service.pid,
        "log_path": str(service.log_path),
        "startup_seconds": service.startup_seconds,
    }


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state file written by :meth:`Stack.write_state` into endpoint objects.

    Returns a dict with some of the keys ``orthanc`` (:class:`OrthancEndpoint`),
    ``postgres`` (:class:`PostgresEndpoint`) and ``hapi`` (:class:`HapiEndpoint`).
    """
    data = json.loads(Path(path).read_text())
    out: dict[str, Any] = {}
    if "orthanc" in data:
        o = data["orthanc"]
        out["orthanc"] = OrthancEndpoint(
            o["base_url"], o["dicomweb_url"], o["username"], o["password"]
        )
    if "postgres" in data:
        p = data["postgres"]
        out["postgres"] = PostgresEndpoint(
            p["url"], p["host"], int(p["port"]), p["user"], p["password"], p["database"]
        )
    if "hapi" in data:
        h = data["hapi"]
        out["hapi"] = HapiEndpoint(h["base_url"], h["fhir_url"])
    return out
