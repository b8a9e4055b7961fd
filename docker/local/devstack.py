"""Start the real systems around the bridge on free loopback ports, for tests and the demo.

Three throwaway servers, each with its own temporary storage:

* :class:`Orthanc` - the Debian ``orthanc`` binary with the DICOMweb plugin
  (``orthanc-dicomweb``), HTTP basic auth, config written by us.
* :class:`Postgres` - a fresh PostgreSQL 15 cluster (``initdb`` + ``postgres``),
  database ``bridge`` owned by user ``bridge``.
* :class:`Hapi` - the HAPI FHIR JPA launcher jar built by ``docker/hapi/build.sh``.

:class:`Stack` starts any subset of them, and ``python docker/local/devstack.py up
--state .run/stack.json`` runs them in the foreground until SIGTERM/SIGINT, writing
URLs and credentials to the state file (which the test-suite can reuse through
``BRIDGE_TEST_STACK=.run/stack.json``).

Only the standard library and httpx are used, so this file can be imported by path
(``sys.path.insert(0, "docker/local")``) without installing the project.

Every process started here is stopped on exit: explicitly by ``stop()``, by an
``atexit`` hook, on SIGTERM/SIGHUP (turned into KeyboardInterrupt when no other
handler is installed) and, as a last resort if the Python process is killed,
through the kernel's parent-death signal (``setpriv --pdeathsig``).

Environment: ``BRIDGE_HAPI_JAR`` (use this jar instead of running build.sh),
``BRIDGE_HAPI_START_TIMEOUT`` (seconds, default 240), ``BRIDGE_DEVSTACK_KEEP=1`` (keep the
temp dirs - data and logs - after stop).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, ClassVar, Self

import httpx

__all__ = [
    "ALL_COMPONENTS",
    "DevStackError",
    "Hapi",
    "HapiEndpoint",
    "Orthanc",
    "OrthancEndpoint",
    "PortInUseError",
    "Postgres",
    "PostgresEndpoint",
    "Stack",
    "build_hapi_jar",
    "free_port",
    "hapi_start_timeout",
    "load_state",
    "main",
]

LOOPBACK = "127.0.0.1"
ALL_COMPONENTS: frozenset[str] = frozenset({"orthanc", "hapi", "postgres"})

ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
# Debian's orthanc-dicomweb ships /usr/lib/orthanc/libOrthancDicomWeb.so.1.7 and links it here.
ORTHANC_PLUGIN_DIR = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = ORTHANC_PLUGIN_DIR / "libOrthancDicomWeb.so"
PG_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
PG_SYSTEM_USER = "postgres"
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


def _password() -> str:
    # token_urlsafe only uses [A-Za-z0-9_-]: safe in URLs, JSON and SQL literals.
    return secrets.token_urlsafe(18)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- process bookkeeping

_REGISTRY: list[_Service] = []
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


class _Service:
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
            group=_primary_group(user) if user else None,
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
                        f"log {self.log_path}:\n{_tail(self.log_path)}"
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
                        f"log {self.log_path}:\n{_tail(self.log_path)}"
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


def _primary_group(user: str) -> int:
    return pwd.getpwnam(user).pw_gid


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class OrthancEndpoint:
    base_url: str
    dicomweb_url: str
    username: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)


@dataclass(frozen=True)
class PostgresEndpoint:
    url: str
    host: str
    port: int
    user: str
    password: str
    database: str


@dataclass(frozen=True)
class HapiEndpoint:
    base_url: str
    fhir_url: str


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


# --------------------------------------------------------------------------- Orthanc


class Orthanc(_Service):
    """Orthanc 1.10 (Debian) + DICOMweb plugin 1.7, basic auth, storage in a temp dir.

    Notes on this Orthanc version (1.10.1):

    * it has no ``ExtraMainDicomTags`` option (added in 1.11), so the index only holds the
      built-in "main DICOM tags". QIDO-RS still answers ``includefield`` for any tag: with
      ``StorageAccessOnFind: Always`` the DICOMweb plugin reads the tags of one instance of
      each matched resource from the storage area.
    * it has no HTTP bind-address option; ``RemoteAccessAllowed: false`` makes it refuse
      every client that is not on localhost.
    """

    name = "orthanc"

    def __init__(
        self,
        *,
        notify_lua_script: Path | None = None,
        username: str = "bridge",
        password: str | None = None,
        binary: Path = ORTHANC_BINARY,
        extra_config: dict[str, Any] | None = None,
        verbose: bool = False,
        workdir: Path | None = None,
        keep_workdir: bool = False,
    ) -> None:
        if not binary.exists():
            raise DevStackError(f"{binary} not found: apt-get install orthanc orthanc-dicomweb")
        if not DICOMWEB_PLUGIN.exists():
            raise DevStackError(f"{DICOMWEB_PLUGIN} not found: apt-get install orthanc-dicomweb")
        super().__init__(workdir=workdir, keep_workdir=keep_workdir)
        self.binary = binary
        self.username = username
        self.password = password or _password()
        self.notify_lua_script = notify_lua_script
        self.extra_config = extra_config or {}
        self.verbose = verbose
        self.config_path = self.workdir / "orthanc.json"
        self._update_urls()

    def _update_urls(self) -> None:
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.dicomweb_url = f"{self.base_url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def endpoint(self) -> OrthancEndpoint:
        return OrthancEndpoint(self.base_url, self.dicomweb_url, self.username, self.password)

    def config(self) -> dict[str, Any]:
        storage = self.workdir / "storage"
        cfg: dict[str, Any] = {
            "Name": f"bridge-devstack-{self.port}",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "TemporaryDirectory": str(self.workdir / "tmp"),
            "StorageCompression": False,
            "SyncStorageArea": False,  # throwaway data: no fsync per instance
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "LuaScripts": [str(self.notify_lua_script)] if self.notify_lua_script else [],
            "HttpServerEnabled": True,
            "HttpPort": self.port,
            "HttpDescribeErrors": True,
            "HttpCompressionEnabled": False,
            "HttpThreadsCount": 20,
            "HttpsCACertificates": "/etc/ssl/certs/ca-certificates.crt",
            "RemoteAccessAllowed": False,  # loopback clients only
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.username: self.password},
            "DicomServerEnabled": False,
            "DicomPort": free_port(),  # unused while the DICOM server is disabled
            "StableAge": 2,
            "OverwriteInstances": True,
            "StorageAccessOnFind": "Always",  # QIDO may read any tag from the stored files
            "SaveJobs": False,
            "ConcurrentJobs": 2,
            "ExecuteLuaEnabled": False,
            "MetricsEnabled": True,
            "DeidentifyLogs": False,
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "EnableWado": True,
                "WadoRoot": "/wado",
                "Ssl": False,
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
                "QidoCaseSensitive": True,
            },
        }
        cfg.update(self.extra_config)
        return cfg

    def _prepare(self) -> None:
        (self.workdir / "storage").mkdir(exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self.config_path.chmod(0o600)  # it holds the password

    def _command(self) -> list[str]:
        cmd = [str(self.binary)]
        if self.verbose:
            cmd.append("--verbose")
        cmd.append(str(self.config_path))
        return cmd

    def _is_ready(self, client: httpx.Client) -> bool:
        resp = client.get(f"{self.base_url}/system", auth=self.auth)
        return resp.status_code == 200

    def start(self, timeout: float = 60.0) -> Self:
        return super().start(timeout)


# --------------------------------------------------------------------------- PostgreSQL


class Postgres(_Service):
    """A throwaway PostgreSQL 15 cluster listening on 127.0.0.1:<free port>.

    ``initdb`` and ``postgres`` refuse to run as root; when we are root they run as the
    ``postgres`` system user created by the Debian package, and the temp dir is chowned
    to it.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients, do not wait for them

    def __init__(
        self,
        *,
        database: str = "bridge",
        user: str = "bridge",
        password: str | None = None,
        bin_dir: Path = PG_BIN_DIR,
        workdir: Path | None = None,
        keep_workdir: bool = False,
    ) -> None:
        if not (bin_dir / "initdb").exists():
            raise DevStackError(
                f"{bin_dir / 'initdb'} not found: apt-get install postgresql-15 "
                "(the Debian package providing initdb and postgres)"
            )
        super().__init__(workdir=workdir, keep_workdir=keep_workdir)
        self.bin_dir = bin_dir
        self.host = LOOPBACK
        self.database = database
        self.user = user
        self.password = password or _password()
        self.data_dir = self.workdir / "data"
        self.socket_dir = self.workdir / "sock"
        self._os_user = PG_SYSTEM_USER if os.geteuid() == 0 else None
        self._update_urls()

    def _update_urls(self) -> None:
        self.url = (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/"
            f"{self.database}"
        )

    def endpoint(self) -> PostgresEndpoint:
        return PostgresEndpoint(
            self.url, self.host, self.port, self.user, self.password, self.database
        )

    def _spawn_user(self) -> str | None:
        return self._os_user

    def _run(self, args: Sequence[str], timeout: float = 120.0) -> None:
        user = self._os_user
        with open(self.log_path, "ab") as log:
            log.write(f"devstack: running {' '.join(args)}\n".encode())
            log.flush()
            result = subprocess.run(
                list(args),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                user=user,
                group=_primary_group(user) if user else None,
                extra_groups=[] if user else None,
                check=False,
            )
        if result.returncode != 0:
            raise DevStackError(
                f"{args[0]} failed with status {result.returncode}; "
                f"log {self.log_path}:\n{_tail(self.log_path)}"
            )

    def _prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return  # relaunch on another port: the cluster is already initialised
        self.socket_dir.mkdir(exist_ok=True)
        if self._os_user is not None:
            try:
                entry = pwd.getpwnam(self._os_user)
            except KeyError as exc:
                raise DevStackError(
                    f"running as root needs the '{self._os_user}' system user "
                    "(apt-get install postgresql-15 creates it)"
                ) from exc
            for path in (self.workdir, self.socket_dir, self.log_path):
                if not path.exists():
                    path.touch()
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "64MB",
        }
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def _is_ready(self, client: httpx.Client) -> bool:
        result = subprocess.run(
            [
                str(self.bin_dir / "pg_isready"),
                "-q",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> None:
        """Run SQL as the cluster superuser over the unix socket."""
        self._run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ]
        )

    def _after_ready(self) -> None:
        self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        self.psql(f"CREATE DATABASE {self.database} OWNER {self.user}")

    def start(self, timeout: float = 60.0) -> Self:
        return super().start(timeout)


# --------------------------------------------------------------------------- HAPI FHIR


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


class Hapi(_Service):
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


# --------------------------------------------------------------------------- Stack

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
        self.repo_root = repo_root or Path(__file__).resolve().parents[2]
        self.hapi_timeout = hapi_timeout
        self.hapi_jar = hapi_jar
        self.notify_lua_script = notify_lua_script
        self.orthanc: Orthanc | None = None
        self.postgres: Postgres | None = None
        self.hapi: Hapi | None = None

    def services(self) -> list[_Service]:
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
                self.hapi = Hapi(jar)
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
            o = self.orthanc
            data["orthanc"] = {
                "base_url": o.base_url,
                "dicomweb_url": o.dicomweb_url,
                "username": o.username,
                "password": o.password,
                "pid": o.pid,
                "log_path": str(o.log_path),
                "startup_seconds": o.startup_seconds,
            }
        if self.postgres is not None:
            p = self.postgres
            data["postgres"] = {
                "url": p.url,
                "host": p.host,
                "port": p.port,
                "user": p.user,
                "password": p.password,
                "database": p.database,
                "pid": p.pid,
                "log_path": str(p.log_path),
                "startup_seconds": p.startup_seconds,
            }
        if self.hapi is not None:
            h = self.hapi
            data["hapi"] = {
                "base_url": h.base_url,
                "fhir_url": h.fhir_url,
                "jar": str(h.jar),
                "pid": h.pid,
                "log_path": str(h.log_path),
                "startup_seconds": h.startup_seconds,
            }
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


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


# --------------------------------------------------------------------------- CLI


def _cmd_up(args: argparse.Namespace) -> int:
    components = (
        {c.strip() for c in args.only.split(",") if c.strip()} if args.only else ALL_COMPONENTS
    )
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    stack = Stack(
        hapi_jar=Path(args.hapi_jar) if args.hapi_jar else None,
        notify_lua_script=Path(args.orthanc_lua).resolve() if args.orthanc_lua else None,
        hapi_timeout=args.hapi_timeout,
    )
    state = Path(args.state)
    try:
        t0 = time.monotonic()
        stack.start(components)
        stack.write_state(state)
        print(
            f"devstack: up in {time.monotonic() - t0:.1f} s; state in {state}",
            file=sys.stderr,
            flush=True,
        )
        for service in stack.services():
            print(
                f"devstack:   {service.name}: ready after {service.startup_seconds or 0:.1f} s, "
                f"log {service.log_path}",
                file=sys.stderr,
                flush=True,
            )
        while not stop_requested.wait(1.0):
            for service in stack.services():
                if not service.running:
                    print(
                        f"devstack: {service.name} died; log tail:\n{_tail(service.log_path)}",
                        file=sys.stderr,
                    )
                    return 1
        return 0
    finally:
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            state.unlink()
        print("devstack: stopped", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start servers, write the state file, run until SIGTERM/^C")
    up.add_argument("--state", default=".run/stack.json", help="where to write URLs/credentials")
    up.add_argument("--only", default="", help="comma list out of orthanc,postgres,hapi")
    up.add_argument("--hapi-jar", default="", help="skip docker/hapi/build.sh, use this jar")
    up.add_argument(
        "--hapi-timeout",
        type=float,
        default=None,
        help="seconds to wait for HAPI (default $BRIDGE_HAPI_START_TIMEOUT or 240)",
    )
    up.add_argument("--orthanc-lua", default="", help="Lua script added to Orthanc LuaScripts")
    args = parser.parse_args(argv)
    if args.command == "up":
        return _cmd_up(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
