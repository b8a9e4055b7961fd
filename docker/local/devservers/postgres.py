"""A throwaway PostgreSQL 15 cluster of the dev stack (``initdb`` + ``postgres``).

Database ``bridge`` owned by user ``bridge``; the cluster lives in the server's temporary
directory and is tuned for throwaway data (no fsync).
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx

from devservers.process import (
    LOOPBACK,
    DevStackError,
    Service,
    log_tail,
    new_password,
    primary_group,
)

__all__ = ["PG_BIN_DIR", "Postgres", "PostgresEndpoint"]

PG_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
PG_SYSTEM_USER = "postgres"


@dataclass(frozen=True)
class PostgresEndpoint:
    """Where a running PostgreSQL answers: SQLAlchemy URL and parts (state file ``postgres``)."""

    url: str
    host: str
    port: int
    user: str
    password: str
    database: str



class Postgres(Service):
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
        self.password = password or new_password()
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
                group=primary_group(user) if user else None,
                extra_groups=[] if user else None,
                check=False,
            )
        if result.returncode != 0:
            raise DevStackError(
                f"{args[0]} failed with status {result.returncode}; "
                f"log {self.log_path}:\n{log_tail(self.log_path)}"
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

    def _superuser_socket(self) -> list[str]:
        """libpq client options reaching the cluster superuser over the unix socket."""
        return ["-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres"]

    def _is_ready(self, client: httpx.Client) -> bool:
        result = subprocess.run(
            [
                str(self.bin_dir / "pg_isready"),
                "-q",
                *self._superuser_socket(),
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
                *self._superuser_socket(),
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
