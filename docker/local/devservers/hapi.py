"""The HAPI FHIR JPA server (R4) of the dev stack, from the launcher jar of ``docker/hapi``.

Environment: ``BRIDGE_HAPI_START_TIMEOUT`` (seconds to wait for the server, default 240).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx

from devservers.process import LOOPBACK, DevStackError, Service

__all__ = ["Hapi", "HapiEndpoint", "build_hapi_jar", "hapi_start_timeout"]


@dataclass(frozen=True)
class HapiEndpoint:
    """Where a running HAPI FHIR server answers (state file ``hapi``)."""

    base_url: str
    fhir_url: str


def build_hapi_jar(repo_root: str | os.PathLike[str], timeout: float | None = None) -> Path:
    """Run ``docker/hapi/build.sh`` and return the jar path it prints on its last stdout line.

    The build's own output goes to stderr (so it shows up in the terminal / pytest's
    captured output); a jar that is already built is expected to be returned quickly.
    """
    root = Path(repo_root)
    script = root / "docker" / "hapi" / "build.sh"
    if not script.exists():
        raise DevStackError(f"{script} not found")
    result = subprocess.run(
        ["bash", str(script)],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        timeout=timeout,
        check=False,
    )
    lines = [line.strip() for line in result.stdout.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    if result.returncode != 0 or not lines:
        tail = "\n".join(lines[-20:])
        raise DevStackError(f"{script} failed with status {result.returncode}:\n{tail}")
    jar = Path(lines[-1])
    if not jar.is_absolute():
        jar = root / jar
    if not jar.is_file():
        raise DevStackError(f"{script} printed {lines[-1]!r}, which is not a file")
    return jar


_IMMUTABLE_JAR = re.compile(r"hapi-launcher-[0-9a-f]{64}\.jar")


#: the arguments the shared dev/test stack starts HAPI with: its background job pass (bulk
#: export jobs, $expunge) every 5 s instead of HAPI's 60 s, so a Bulk Data export answers in
#: seconds rather than minutes (tests/integration/record/test_record_bulk_hapi.py: 13-18 s
#: instead of 60-170 s); nothing else changes
STACK_ARGS = ("--hapi.batch2.maintenance-interval-ms=5000",)


class Hapi(Service):
    """HAPI FHIR JPA server (R4) from the launcher jar; ``fhir_url`` = ``http://127.0.0.1:P/fhir``.

    The process runs with its temp dir as working directory, so relative storage paths of
    the launcher (e.g. an H2 database file) land there.
    """

    name = "hapi"

    def __init__(
        self,
        jar: str | os.PathLike[str],
        *,
        java: str = "java",
        max_heap: str = "768m",
        extra_args: Iterable[str] = (),
        workdir: Path | None = None,
        keep_workdir: bool = False,
    ) -> None:
        self.jar = Path(jar).resolve()
        if not self.jar.is_file():
            raise DevStackError(f"HAPI jar {self.jar} not found (run bash docker/hapi/build.sh)")
        java_path = shutil.which(java)
        if java_path is None:
            raise DevStackError(f"{java} not found: apt-get install openjdk-17-jre-headless")
        super().__init__(workdir=workdir, keep_workdir=keep_workdir)
        self.java = java_path
        self.max_heap = max_heap
        self.extra_args = list(extra_args)
        self.run_jar = self.jar
        self._update_urls()

    def _update_urls(self) -> None:
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.fhir_url = f"{self.base_url}/fhir"

    def endpoint(self) -> HapiEndpoint:
        return HapiEndpoint(self.base_url, self.fhir_url)

    def _prepare(self) -> None:
        # The JVM (Spring Boot's nested-jar loader) reopens the jar by path while running, so
        # a jar rebuilt in place or deleted meanwhile breaks the server (ClassNotFoundException
        # mid-test) - and build.sh deletes cached jars of older sources. Run a private file:
        # a hard link for build.sh's content-addressed cache entries (their content never
        # changes), a copy for anything else (e.g. docker/hapi/target/*.jar).
        self.run_jar = self.workdir / self.jar.name
        if self.run_jar.exists():
            return
        if _IMMUTABLE_JAR.fullmatch(self.jar.name):
            with contextlib.suppress(OSError):
                os.link(self.jar, self.run_jar)
                return
        shutil.copyfile(self.jar, self.run_jar)

    def _command(self) -> list[str]:
        return [
            self.java,
            f"-Xmx{self.max_heap}",
            f"-Djava.io.tmpdir={self.workdir}",
            "-jar",
            str(self.run_jar),
            f"--server.port={self.port}",
            f"--server.address={LOOPBACK}",
            *self.extra_args,
        ]

    def _is_ready(self, client: httpx.Client) -> bool:
        resp = client.get(f"{self.fhir_url}/metadata", headers={"Accept": "application/fhir+json"})
        return resp.status_code == 200

    def start(self, timeout: float | None = None) -> Self:
        """Start and wait for ``/fhir/metadata``; ``timeout`` defaults to
        ``$BRIDGE_HAPI_START_TIMEOUT`` or 240 s (HAPI needs ~100 s on 2 idle cores)."""
        return super().start(hapi_start_timeout() if timeout is None else timeout)


def hapi_start_timeout() -> float:
    return float(os.environ.get("BRIDGE_HAPI_START_TIMEOUT", "240"))
