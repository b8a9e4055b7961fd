"""Orthanc with the DICOMweb plugin, as a throwaway server of the dev stack.

The Debian ``orthanc`` binary with ``orthanc-dicomweb``, HTTP basic auth, storage and a
configuration written by us in the server's temporary directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

from devservers.process import (
    LOOPBACK,
    DevStackError,
    Service,
    free_port,
    new_password,
)

__all__ = ["DICOMWEB_PLUGIN", "ORTHANC_BINARY", "Orthanc", "OrthancEndpoint"]

ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
# Debian's orthanc-dicomweb ships /usr/lib/orthanc/libOrthancDicomWeb.so.1.7 and links it here.
ORTHANC_PLUGIN_DIR = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = ORTHANC_PLUGIN_DIR / "libOrthancDicomWeb.so"


@dataclass(frozen=True)
class OrthancEndpoint:
    """Where a running Orthanc answers, and its basic-auth credentials (state file ``orthanc``)."""

    base_url: str
    dicomweb_url: str
    username: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)


class Orthanc(Service):
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
        self.password = password or new_password()
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
