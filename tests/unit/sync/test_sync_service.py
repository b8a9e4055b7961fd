"""The long-running worker loop of ``bridge.sync.service``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bridge.metrics import QUEUE_DEPTH
from bridge.state import open_store
from bridge.sync.runner import DrainStats
from bridge.sync.service import worker_loop
from bridge.sync.signal import WorkSignal


class _IdleRunner:
    async def run_once(self, stats: DrainStats | None = None) -> int:
        return 0


async def test_idle_worker_reports_each_archives_own_queue_depth(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.mark_many_due("busy-arc", [("1.2.3", None), ("1.2.4", None)], reason="manual")
        ctx: Any = SimpleNamespace(runner=_IdleRunner(), store=store,
                                   archives={"busy-arc": None, "quiet-arc": None},
                                   work=WorkSignal(),
                                   stats=DrainStats())
        stop = asyncio.Event()
        task = asyncio.create_task(worker_loop(ctx, stop, idle=0.05))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    finally:
        store.close()
    assert QUEUE_DEPTH.labels(archive="busy-arc")._value.get() == 2
    assert QUEUE_DEPTH.labels(archive="quiet-arc")._value.get() == 0
