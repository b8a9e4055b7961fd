"""A 4-second archive outage during the backfill scan is waited out (issue 12 item 14),
against a dedicated Orthanc behind a TCP proxy and the real HAPI, through the real CLI.

Before, the scan's first refused QIDO ended ``imaging-bridge backfill`` with status 1 while
the drain next to it would have deferred and resumed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.fault_helpers import (
    imaging_studies,
    output_of,
    start_bridge,
    summary,
    write_config,
)
from tests.integration.sync_helpers import load_and_seed
from tests.integration.tcp_proxy import TcpProxy
from tests.support.settings import archive_entry
from tests.support.waits import wait_until

OUTAGE = 4.0  # seconds, as in the issue


@pytest.fixture
def archive(orthanc_factory: Any) -> Any:
    """An Orthanc of the test's own: the backfill sees exactly the studies the test loaded."""
    return orthanc_factory()


def test_backfill_waits_out_a_four_second_archive_outage_during_its_scan(
    archive: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    loaded = load_and_seed(archive, hapi, ns, count=4)
    target = urlsplit(archive.base_url)
    assert target.hostname and target.port
    with TcpProxy(target.hostname, target.port) as proxy:
        config = write_config(
            tmp_path / "bridge.yaml",
            archives=[archive_entry(archive, ns.name("arc"),
                                    base_url=f"{proxy.url}/dicom-web")],
            fhir_url=hapi.fhir_url, state_url=f"sqlite:///{tmp_path / 'state.db'}")
        # the archive is down when the scan starts, and stays down for OUTAGE seconds after
        # the scan's first query met it
        proxy.cut()
        bridge = start_bridge(["backfill", "--config", str(config), "--settle", "60"],
                              log_dir=tmp_path, tag="backfill")

        def still_running() -> None:
            assert bridge.poll() is None, (
                f"backfill ended during the outage (status {bridge.returncode}): "
                f"{output_of(tmp_path, 'backfill')}")

        try:
            wait_until(lambda: bridge.poll() is not None
                     or "archive query failed" in output_of(tmp_path, "backfill")[1],
                     timeout=120, what="the scan's first query to meet the outage")
            still_running()
            down_since = time.monotonic()
            while time.monotonic() - down_since < OUTAGE:
                still_running()
                time.sleep(0.1)
            proxy.restore()
            status = bridge.wait(timeout=240)
        finally:
            if bridge.poll() is None:
                bridge.kill()
                bridge.wait()
    out, err = output_of(tmp_path, "backfill")
    assert status == 0, (out, err)
    assert "waiting to retry" in err  # the scan said what it was doing
    figures = summary(out)
    assert figures["synced"] == len(loaded.truths) and figures["failed"] == 0, out
    for truth in loaded.truths:
        assert len(imaging_studies(hapi, truth.study_uid)) == 1, truth.study_uid
