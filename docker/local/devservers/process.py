"""A server process of the dev stack, and the bookkeeping that stops every one of them.

:class:`Service` is the base of :class:`~devservers.orthanc.Orthanc`,
:class:`~devservers.postgres.Postgres` and :class:`~devservers.hapi.Hapi`: a process with
its own temporary directory and log file, spawned on a free loopback port, polled until it
answers, relaunched on another port when its port was taken meanwhile, and stopped.

Every process started here is stopped on exit: explicitly by :meth:`Service.stop`, by an
``atexit`` hook over the registry of running services, on SIGTERM/SIGHUP (turned into
KeyboardInterrupt when no other handler is installed) and, as a last resort if the Python
process is killed, through the kernel's parent-death signal (``setpriv --pdeathsig``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, ClassVar, Self

import httpx

__all__ = [
    "LOOPBACK",
    "PORT_ATTEMPTS",
    "DevStackError",
    "PortInUseError",
    "Service",
    "free_port",
    "log_tail",
    "new_password",
    "primary_group",
]

LOOPBACK = "127.0.0.1"
SETPRIV = shutil.which("setpriv")


class DevStackError(RuntimeError):
    """A server could not be started (the message includes the tail of its log)."""


class PortInUseError(DevStackError):
    """The free port we picked was taken by someone else before the server bound it."""


#: how many times a server is relaunched on a new port when its port was taken meanwhile
PORT_ATTEMPTS = 3


def free_port() -> int:
    """Return a TCP port that is currently free on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def new_password() -> str:
    """A random password for a throwaway server."""
    # token_urlsafe only uses [A-Za-z0-9_-]: safe in URLs, JSON and SQL literals.
    return secrets.token_urlsafe(18)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a server's log, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- registry

_REGISTRY: list[Service] = []
_REGISTRY_LOCK = threading.Lock()
_HOOKS_INSTALLED = False


def _stop_all() -> None:
    with _REGISTRY_LOCK:
        services = list(reversed(_REGISTRY))
    for service in services:
        with contextlib.suppress(Exception):
            service.stop()


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    # Treat SIGTERM/SIGHUP like Ctrl-C, so finalizers and atexit hooks run (a SystemExit
    # would merely fail the current test under pytest, which then carries on).
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _install_exit_hooks() -> None:
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _sigterm_to_interrupt)


class Service:
    """A server process with its own temporary directory and log file."""

    name: ClassVar[str] = "service"
    #: signal asking the server for a clean, fast shutdown
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, *, workdir: Path | None = None, keep_workdir: bool = False) -> None:
        self._own_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix=f"bridge-{self.name}-")) if workdir is None else workdir
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep_workdir = keep_workdir or os.environ.get("BRIDGE_DEVSTACK_KEEP") == "1"
        self.log_path = self.workdir / f"{self.name}.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        #: seconds from spawning the process until it answered its readiness probe
        self.startup_seconds: float | None = None
        self._launched_at = 0.0
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0

    # -- hooks for subclasses
    def _prepare(self) -> None:
        """Write configuration / initialise storage before the process is spawned."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _spawn_user(self) -> str | None:
        return None

    def _is_ready(self, client: httpx.Client) -> bool:
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Post-start set-up (e.g. creating a database)."""

    # -- lifecycle
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> None:
        """Spawn the process without waiting for it to be ready."""
        if self.process is not None:
            raise DevStackError(f"{self.name} already started")
        _install_exit_hooks()
        self._launched_at = time.monotonic()
        self._prepare()
        cmd = self._command()
        user = self._spawn_user()
        if SETPRIV is not None:
            # If this Python process dies without cleaning up, the kernel stops the server.
            cmd = [SETPRIV, f"--pdeathsig={self.stop_signal.name[3:]}", "--", *cmd]
        if self._log_file is not None:
            self._log_file.close()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_offset = self._log_file.tell()
        self._log_file.write(f"devstack: starting {' '.join(cmd)}\n".encode())
        self._log_file.flush()
        self.process = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal must not reach it before we stop it
            user=user,
            group=primary_group(user) if user else None,
            extra_groups=[] if user else None,
        )
        with _REGISTRY_LOCK:
            if self not in _REGISTRY:
                _REGISTRY.append(self)

    def wait_ready(self, timeout: float) -> None:
        """Poll until the server answers, or raise :class:`DevStackError` (the caller then
        calls :meth:`stop`; :meth:`start` and :meth:`Stack.start` do)."""
        assert self.process is not None, "launch() first"
        deadline = self._launched_at + timeout
        with httpx.Client(timeout=5.0) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    message = (
                        f"{self.name} exited with status {code} during start-up; "
                        f"log {self.log_path}:\n{log_tail(self.log_path)}"
                    )
                    if "already in use" in self._log_since_launch().lower():
                        raise PortInUseError(message)
                    raise DevStackError(message)
                try:
                    if self._is_ready(client):
                        break
                except (httpx.HTTPError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise DevStackError(
                        f"{self.name} not ready after {timeout:.0f} s; "
                        f"log {self.log_path}:\n{log_tail(self.log_path)}"
                    )
                time.sleep(0.2)
        self.startup_seconds = time.monotonic() - self._launched_at
        self._after_ready()
        self._note(f"ready after {self.startup_seconds:.2f} s")

    def _log_since_launch(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_ready_or_relaunch(self, timeout: float, attempts: int = PORT_ATTEMPTS) -> None:
        """:meth:`wait_ready`; if the port was taken meanwhile, relaunch on a new port."""
        for attempt in range(1, attempts + 1):
            try:
                self.wait_ready(timeout)
                return
            except PortInUseError:
                if attempt == attempts:
                    raise
                self._note(f"port {self.port} taken, retrying on another port")
                self.process = None
                self.port = free_port()
                self._update_urls()
                self.launch()

    def _update_urls(self) -> None:
        """Recompute the attributes derived from ``self.port``."""

    def start(self, timeout: float = 60.0) -> Self:
        try:
            self.launch()
            self.wait_ready_or_relaunch(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to shut down, kill it after ``timeout`` s, remove its temp dir."""
        proc = self.process
        t0 = time.monotonic()
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc is not None:
            self._note(f"stopped in {time.monotonic() - t0:.2f} s (status {proc.returncode})")
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        with _REGISTRY_LOCK:
            if self in _REGISTRY:
                _REGISTRY.remove(self)
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _note(self, message: str) -> None:
        line = f"devstack: {self.name} {message}\n".encode()
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.write(line)
            self._log_file.flush()
        elif self.log_path.parent.exists():
            with open(self.log_path, "ab") as fh:
                fh.write(line)

    def __enter__(self) -> Self:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def primary_group(user: str) -> int:
    """The primary group id of a system user (servers started as another user run in it)."""
    return pwd.getpwnam(user).pw_gid

