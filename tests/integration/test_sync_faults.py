"""Faults in the middle of a backfill, against the real Orthanc and HAPI FHIR servers
(issue 4, "Proof": the FHIR server going away, the bridge SIGKILLed mid-batch).

After each fault the backfill must finish with every study as exactly one ImagingStudy:
nothing lost, nothing duplicated, nothing recorded as synced that HAPI did not confirm.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bridge.config import load_settings
from bridge.state import AuditAction, AuditView, Status, open_store
from bridge.sync.backfill import mark_history
from bridge.sync.runner import DrainStats
from tests.integration.fault_helpers import (
    imaging_studies,
    output_of,
    start_bridge,
    summary,
    write_config,
)
from tests.integration.sync_helpers import Loaded, load_and_seed
from tests.integration.tcp_proxy import TcpProxy
from tests.support.settings import archive_entry
from tests.support.waits import wait_until
from tests.support.wiring import sync_context


@pytest.fixture
def archive(orthanc_factory: Any) -> Any:
    """An Orthanc of the test's own: a backfill sees exactly the studies the test loaded."""
    return orthanc_factory()


@pytest.fixture
def fhir_proxy(hapi: Any) -> Any:
    target = urlsplit(hapi.fhir_url)
    assert target.hostname and target.port
    with TcpProxy(target.hostname, target.port) as proxy:
        yield proxy


def _assert_each_study_once(hapi: Any, loaded: Loaded) -> None:
    for truth in loaded.truths:
        found = imaging_studies(hapi, truth.study_uid)
        assert len(found) == 1, (truth.study_uid, [s["id"] for s in found])
        assert found[0]["numberOfSeries"] == truth.series_count
        assert found[0]["numberOfInstances"] == truth.instance_count


async def test_fhir_server_going_away_mid_backfill_loses_and_duplicates_nothing(
    archive: Any, hapi: Any, ns: Any, tmp_path: Path, fhir_proxy: TcpProxy
) -> None:
    loaded = load_and_seed(archive, hapi, ns, count=8)
    name = ns.name("arc")
    config = write_config(
        tmp_path / "bridge.yaml", archives=[archive_entry(archive, name)],
        fhir_url=f"{fhir_proxy.url}/fhir", state_url=f"sqlite:///{tmp_path / 'state.db'}",
        batch_size=2, claim_batch=2, backoff_base=0.5, backoff_max=2.0, fhir_timeout=20.0,
    )
    settings = load_settings(config)
    start, end = loaded.dates
    n = len(loaded.truths)

    async with sync_context(settings) as ctx:
        marked = await mark_history(ctx.archives[name], ctx.store, start=start, end=end,
                                    window_days=3650)
        assert marked == n
        drain = asyncio.create_task(ctx.runner.drain_until_settled(max_idle=60, poll=0.2))

        def synced() -> int:
            return ctx.store.counts()["synced"]

        # the server goes away once part of the backfill is confirmed, maybe mid-batch
        await asyncio.to_thread(wait_until, lambda: synced() >= 2, timeout=120,
                                what="first studies synced")
        fhir_proxy.cut()
        await asyncio.sleep(0.5)  # a batch in flight at the cut is reset, not confirmed
        during = ctx.store.counts()
        await asyncio.sleep(3.0)
        after_outage = ctx.store.counts()
        assert after_outage["synced"] == during["synced"] < n, "synced while HAPI was away"
        assert after_outage["failed"] == 0
        assert not drain.done(), "the backfill gave up during the outage"

        fhir_proxy.restore()
        stats = await asyncio.wait_for(drain, timeout=180)

        counts = ctx.store.counts()
        assert counts["synced"] == n, counts
        assert counts["failed"] == 0
        assert ctx.store.queue_depth() == 0
        assert ctx.store.failures() == []
        retried = [f for t in loaded.truths for f in ctx.store.failure_history(t.study_uid)]
        assert retried, "the outage deferred no study: the test did not cut mid-backfill"
        assert {f.kind for f in retried} == {"fhir-unavailable"}
        assert not any(f.permanent for f in retried)
        assert stats.failed == 0 and stats.retried >= 1
    _assert_each_study_once(hapi, loaded)


async def test_lost_batch_responses_are_retried_without_duplicates(
    archive: Any, hapi: Any, ns: Any, tmp_path: Path, fhir_proxy: TcpProxy
) -> None:
    # HAPI applies the batch but the bridge never hears back: the study must not be marked
    # synced, and the retry (a conditional update) must not create a second ImagingStudy
    loaded = load_and_seed(archive, hapi, ns, count=4)
    name = ns.name("arc")
    config = write_config(
        tmp_path / "bridge.yaml", archives=[archive_entry(archive, name)],
        fhir_url=f"{fhir_proxy.url}/fhir", state_url=f"sqlite:///{tmp_path / 'state.db'}",
        batch_size=4, claim_batch=4, backoff_base=0.2, backoff_max=0.5,
    )
    settings = load_settings(config)
    start, end = loaded.dates
    n = len(loaded.truths)

    async with sync_context(settings) as ctx:
        await mark_history(ctx.archives[name], ctx.store, start=start, end=end,
                           window_days=3650)
        # lookups (Patient, ServiceRequest, Endpoint) are answered; only the answers to
        # the ImagingStudy writes are lost
        fhir_proxy.lose_responses(containing=b"ImagingStudy?identifier")
        lost = DrainStats()
        assert await ctx.runner.run_once(lost) == n
        assert lost.synced == 0 and lost.failed == 0
        assert lost.retried == n
        counts = ctx.store.counts()
        assert counts["synced"] == 0, "marked synced without the server's confirmation"
        # the server did the work although nobody heard about it
        landed = [t for t in loaded.truths if imaging_studies(hapi, t.study_uid)]
        fhir_proxy.restore()
        stats = await ctx.runner.drain_until_settled(max_idle=30, poll=0.2)
        assert stats.synced == n and stats.failed == 0
        assert ctx.store.counts()["synced"] == n
        # created during the outage, found and updated (not created again) by the retry
        actions = {t.study_uid: [e.action for e in ctx.store.study_history(t.study_uid)
                                 if isinstance(e, AuditView)] for t in landed}
    assert landed, "no batch reached HAPI before its answer was lost: the fault was not real"
    assert all(a == [AuditAction.UPDATE] for a in actions.values()), actions
    _assert_each_study_once(hapi, loaded)


def test_bridge_killed_mid_batch_and_restarted_loses_and_duplicates_nothing(
    archive: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    loaded = load_and_seed(archive, hapi, ns, count=8)
    name = ns.name("arc")
    db = tmp_path / "state.db"
    config = write_config(
        tmp_path / "bridge.yaml", archives=[archive_entry(archive, name)],
        fhir_url=hapi.fhir_url, state_url=f"sqlite:///{db}",
        batch_size=2, claim_batch=2, lease_seconds=5.0,
    )
    start, end = loaded.dates
    args = ["backfill", "--config", str(config), "--from", start.isoformat(),
            "--to", end.isoformat(), "--settle", "60"]
    n = len(loaded.truths)

    first = start_bridge(args, log_dir=tmp_path, tag="first")
    try:
        wait_until(db.exists, timeout=60, what="the state store")
        store = open_store(f"sqlite:///{db}")
        try:
            def mid_batch() -> bool:
                if first.poll() is not None:
                    raise AssertionError(f"backfill ended before the kill: "
                                         f"{output_of(tmp_path, 'first')}")
                counts = store.counts()
                return 0 < counts["synced"] < n and counts["leased"] > 0

            wait_until(mid_batch, timeout=180, every=0.02, what="a batch in flight")
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(timeout=30) == -signal.SIGKILL
            at_kill = store.counts()
            assert at_kill["leased"] > 0 and at_kill["synced"] < n, at_kill
        finally:
            store.close()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    started = time.monotonic()
    second = start_bridge(args, log_dir=tmp_path, tag="second")
    try:
        assert second.wait(timeout=300) == 0, output_of(tmp_path, "second")
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    out, err = output_of(tmp_path, "second")
    # the dead worker's leases were taken over once expired, not waited on forever
    assert "expired leases taken over" in err
    assert time.monotonic() - started < 120
    figures = summary(out)
    assert figures["failed"] == 0
    assert figures["synced"] + figures["unchanged"] >= n - at_kill["synced"]

    store = open_store(f"sqlite:///{db}")
    try:
        counts = store.counts()
        assert counts[Status.SYNCED] == n, counts
        assert store.queue_depth() == 0
        assert store.failures() == []
    finally:
        store.close()
    _assert_each_study_once(hapi, loaded)
