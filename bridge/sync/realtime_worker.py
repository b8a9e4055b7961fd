"""Drain loops reserved for the real-time lane (issue 19, "Real time stays real time").

The ``sync.workers`` loops claim batches of both lanes, real-time rows first; but a study
the STOW proxy or a notification makes due while every loop is busy with a bulk batch
(fetch, map, FHIR batch write of ``sync.claim_batch`` studies) waited until one of them
finished it: seconds under a backfill.  ``sync.realtime_workers`` loops beside them claim
only the real-time lane and sleep on the work signal the real-time sources set, so such a
study is claimed as soon as it is marked, whatever bulk work is in flight.

Bulk work keeps its share: these loops never claim bulk rows, and the mixed loops still
keep ``sync.bulk_share`` of each claim for bulk work while real-time work waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bridge.state import Lane
from bridge.sync.runner import DrainStats, SyncRunner

log = logging.getLogger(__name__)


async def realtime_worker_loop(
    runner: SyncRunner, stats: DrainStats, *, wake: asyncio.Event, stop: asyncio.Event,
    idle: float = 1.0,
) -> None:
    """Claim and sync real-time batches until ``stop``; when none is ready, sleep until
    ``wake`` is set (a real-time source marked a study) or ``idle`` seconds passed."""
    while not stop.is_set():
        # cleared *before* claiming, as the other loops do: a mark made while this claim
        # runs sets it again and is claimed on the next turn
        wake.clear()
        try:
            claimed = await runner.run_once(stats, lane=Lane.REALTIME)
        except Exception:  # one bad batch must not end the loop; the leases expire
            log.exception("real-time batch crashed; its studies return when their lease "
                          "expires")
            claimed = 0
        if claimed:
            continue
        waiters = [asyncio.create_task(e.wait()) for e in (stop, wake)]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), idle)
        finally:
            for w in waiters:
                w.cancel()


def start_realtime_workers(
    runner: SyncRunner, stats: DrainStats, *, count: int, wake: asyncio.Event,
    stop: asyncio.Event,
) -> list[asyncio.Task[None]]:
    """``count`` (``sync.realtime_workers``) real-time loops as tasks."""
    return [asyncio.create_task(
        realtime_worker_loop(runner, stats, wake=wake, stop=stop), name=f"realtime-worker-{i}")
        for i in range(count)]
