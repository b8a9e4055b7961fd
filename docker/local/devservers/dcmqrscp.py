"""DCMTK's ``dcmqrscp`` (Debian ``dcmtk``), a classic DIMSE archive playing a legacy PACS.

One AE with a read-write storage area (at most 500 studies: dcmqrscp's own limit per
area) in the server's temporary directory, answering
C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET (C-MOVE only to the destinations given as
``move_destinations``: its HostTable); its configuration file (``dcmqrscp.cfg``, the
format of DCMTK's ``dcmqrcnf.txt``) is written here.  It accepts any calling AE title
(``Peers`` = ``ANY``) and rejects a *called* AE title it does not serve ("called AE title
not recognised", PS3.8 9.3.4).  :func:`store_files` loads Part-10 files with DCMTK's
``storescu`` into it, or into any other C-STORE SCP (an Orthanc with its DICOM server on).

dcmqrscp runs in its default mode, a forked child per association (a child ends with its
association).  Not ``--single-process``: DCMTK 3.6.7's dcmqrscp crashes (SIGSEGV) in that
mode once its first association is released.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

import httpx

from devservers.process import LOOPBACK, DevStackError, Service

__all__ = ["DCMQRSCP_BINARY", "STORESCU_BINARY", "Dcmqrscp", "store_files"]

DCMQRSCP_BINARY = Path(shutil.which("dcmqrscp") or "/usr/bin/dcmqrscp")
STORESCU_BINARY = Path(shutil.which("storescu") or "/usr/bin/storescu")
ECHOSCU_BINARY = Path(shutil.which("echoscu") or "/usr/bin/echoscu")


class Dcmqrscp(Service):
    """``dcmqrscp`` serving ``ae_title`` on a free loopback port."""

    name = "dcmqrscp"

    def __init__(self, *, ae_title: str = "LEGACY-QR", max_studies: int = 500,
                 move_destinations: Mapping[str, tuple[str, int]] | None = None,
                 binary: Path = DCMQRSCP_BINARY, workdir: Path | None = None,
                 keep_workdir: bool = False) -> None:
        if not binary.exists():
            raise DevStackError(f"{binary} not found: apt-get install dcmtk")
        super().__init__(workdir=workdir, keep_workdir=keep_workdir)
        self.binary = binary
        self.ae_title = ae_title
        self.max_studies = max_studies
        #: the AEs it may C-MOVE to: AE title -> (host, port) (its HostTable)
        self.move_destinations = dict(move_destinations or {})
        self.host = LOOPBACK
        self.storage = self.workdir / "storage"
        self.config_path = self.workdir / "dcmqrscp.cfg"

    def config(self) -> str:
        # dcmqrcnf.txt: an AETable row is
        # "AETitle StorageArea Access (MaxStudies, MaxBytesPerStudy) Peers"
        return (
            f"NetworkTCPPort  = {self.port}\n"
            "MaxPDUSize      = 16384\n"
            "MaxAssociations = 16\n"
            "\nHostTable BEGIN\n"
            # "SymbolicName = (AETitle, HostName, PortNumber)": a C-MOVE destination
            + "".join(f"dest{n} = ({ae}, {host}, {port})\n"
                      for n, (ae, (host, port)) in enumerate(self.move_destinations.items()))
            + "HostTable END\n"
            "\nVendorTable BEGIN\nVendorTable END\n"
            "\nAETable BEGIN\n"
            f"{self.ae_title}  {self.storage}  RW  ({self.max_studies}, 1024mb)  ANY\n"
            "AETable END\n"
        )

    def _prepare(self) -> None:
        self.storage.mkdir(exist_ok=True)
        self.config_path.write_text(self.config())

    def _command(self) -> list[str]:
        return [str(self.binary), "--config", str(self.config_path),
                str(self.port)]

    def _is_ready(self, client: httpx.Client) -> bool:
        # a C-ECHO with DCMTK's echoscu, not a bare TCP connect (dcmqrscp logs a connection
        # closed before its A-ASSOCIATE-RQ as an error)
        done = subprocess.run(
            [str(ECHOSCU_BINARY), "--call", self.ae_title, "--timeout", "2", self.host,
             str(self.port)], capture_output=True, timeout=10, check=False)
        return done.returncode == 0

    def start(self, timeout: float = 30.0) -> Self:
        return super().start(timeout)


def store_files(paths: Sequence[Path], *, host: str, port: int, called_ae: str,
                calling_ae: str = "LOADER", timeout: float = 120.0) -> None:
    """C-STORE every Part-10 file of ``paths`` to ``called_ae`` at ``host:port`` with
    DCMTK's ``storescu``; :class:`DevStackError` with its output if any store failed."""
    if not STORESCU_BINARY.exists():
        raise DevStackError(f"{STORESCU_BINARY} not found: apt-get install dcmtk")
    if not paths:
        return
    cmd = [str(STORESCU_BINARY), "--aetitle", calling_ae, "--call", called_ae,
           "--required", host, str(port), *map(str, paths)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or "E: " in done.stderr + done.stdout:
        raise DevStackError(
            f"storescu to {called_ae}@{host}:{port} failed (status {done.returncode}):\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
