"""A real ``imaging-bridge serve`` process for tests: config, start, wait, memory, stop."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.integration.fault_helpers import BRIDGE_CLI
from tests.support.ports import free_port
from tests.support.settings import (
    REPO_ROOT,
    archive_entry,
    bridge_config,
    save_config,
    sqlite_url,
)
from tests.support.waits import wait_until


def serve_config(orthanc: Any, hapi: Any, tmp_path: Path, ns: Any, **sections: Any
                 ) -> dict[str, Any]:
    """A config of its own archive name and SQLite store; ``sections`` add or replace keys.

    The poller stays out of the way (one poll an hour): these tests are about the HTTP face.
    ``orthanc`` should be the test's own (``orthanc_factory``): the first poll runs at
    start-up, and a shared archive's studies are not this test's to sync.
    """
    config = bridge_config(
        archives=[archive_entry(orthanc, f"orthanc-{ns.token}")], fhir_url=hapi.fhir_url,
        state_url=sqlite_url(tmp_path), sync={"poll_interval": 3600.0, "workers": 1},
        api={"port": free_port()})
    return {**config, **sections}


class ServeProcess:
    """``imaging-bridge serve -c <config>`` in its own process, until ``__exit__``."""

    def __init__(self, config: dict[str, Any], work: Path) -> None:
        self.config = config
        self.work = work
        api = config["api"]
        self.url = f"http://127.0.0.1:{api['port']}"
        admin_port = api.get("admin_port")
        self.admin_url = f"http://127.0.0.1:{admin_port}" if admin_port else self.url
        self.log = work / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> ServeProcess:
        path = save_config(self.work / "bridge.yaml", self.config)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([str(BRIDGE_CLI), "serve", "-c", str(path)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        wait_until(lambda: self._up(self.url) and self._up(self.admin_url), timeout=60,
                   every=0.1, what=f"imaging-bridge serve (log: {self.log})")
        return self

    def _up(self, base: str) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited {self.proc.returncode}: {self.output()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def memory_kib(self, field: str = "VmHWM") -> int:
        """``VmHWM`` (peak resident set) or ``VmRSS`` of the process, KiB (proc(5))."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def __exit__(self, *exc: object) -> None:
        self.stop()
