"""Builders shared by the fault, multi-worker and admin tests: configs, bridge processes,
exact counts in HAPI.

These tests give each test an Orthanc of its own (``orthanc_factory``), so a backfill walks
exactly the studies the test loaded, and a unique archive name, so the Endpoint and the
state rows of one test never meet another's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.settings import REPO_ROOT, bridge_config, save_config

BRIDGE_CLI = Path(sys.executable).parent / "imaging-bridge"


def write_config(
    path: Path,
    *,
    archives: Sequence[dict[str, Any]],
    fhir_url: str,
    state_url: str,
    batch_size: int = 2,
    fhir_timeout: float = 60.0,
    **sync: Any,
) -> Path:
    """Write a bridge config file (JSON is YAML) and return its path."""
    sync_settings = {"backoff_base": 0.2, "backoff_max": 2.0, "lease_seconds": 30.0,
                     "claim_batch": 2, "backfill_window_days": 3650, **sync}
    return save_config(path, bridge_config(
        archives=archives, fhir_url=fhir_url, state_url=state_url,
        fhir={"batch_size": batch_size, "timeout": fhir_timeout}, sync=sync_settings))


def start_bridge(args: Sequence[str], *, log_dir: Path, tag: str) -> subprocess.Popen[bytes]:
    """Start ``imaging-bridge ARGS`` as a separate process; output goes to files."""
    out = (log_dir / f"{tag}.out").open("wb")
    err = (log_dir / f"{tag}.err").open("wb")
    return subprocess.Popen([str(BRIDGE_CLI), *args], stdout=out, stderr=err,
                            cwd=REPO_ROOT)


def output_of(log_dir: Path, tag: str) -> tuple[str, str]:
    return ((log_dir / f"{tag}.out").read_text(errors="replace"),
            (log_dir / f"{tag}.err").read_text(errors="replace"))


_SUMMARY = re.compile(r"synced (\d+), unchanged (\d+), retry later (\d+), failed (\d+)")


def summary(stdout: str) -> dict[str, int]:
    """The figures of the ``synced N, unchanged N, retry later N, failed N`` line."""
    match = _SUMMARY.search(stdout)
    assert match, f"no summary line in: {stdout!r}"
    return dict(zip(("synced", "unchanged", "retried", "failed"),
                    (int(g) for g in match.groups()), strict=True))


def imaging_studies(hapi: Any, uid: str) -> list[dict[str, Any]]:
    """Every ImagingStudy with the study's identifier, bypassing HAPI's search cache."""
    with httpx.Client(timeout=60) as client:
        resp = client.get(f"{hapi.fhir_url}/ImagingStudy",
                          params={"identifier": f"urn:dicom:uid|urn:oid:{uid}", "_count": "10"},
                          headers={"Cache-Control": "no-cache"})
        resp.raise_for_status()
        bundle = resp.json()
    return [e["resource"] for e in bundle.get("entry", [])]
