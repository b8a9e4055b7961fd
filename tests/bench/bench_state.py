"""Benchmark of the state store's work queue: prints figures and writes JSON.

    .venv/bin/python tests/bench/bench_state.py                       # SQLite in a temp dir
    .venv/bin/python tests/bench/bench_state.py --url postgresql+psycopg://u:p@h:5432/db
    .venv/bin/python tests/bench/bench_state.py --rows 20000 --json .run/bench_state.json

Measured, each on fresh rows of a unique archive:
  * ``mark_many_due`` of N studies (one bulk upsert per few thousand rows), then again
    (every row an update);
  * ``fingerprints`` of N studies (the poller's bulk read);
  * claim one + complete one, in a loop (the slowest way to use the queue);
  * claim a batch + ``complete_many``, in a loop (how the runner uses it, one FHIR batch
    per claim);
  * the batched loop in two worker processes at once.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from bridge.state import Completion, StateStore, open_store


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def _fill(store: StateStore, archive: str, rows: int) -> list[str]:
    uids = [f"2.25.{uuid.uuid4().int}" for _ in range(rows)]
    store.mark_many_due(archive, [(uid, f"fp-{n}") for n, uid in enumerate(uids)], reason="poll")
    return uids


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def _timed_cpu(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Result, wall seconds and this process's CPU seconds (the latter is steadier on a
    busy machine; for PostgreSQL it leaves out the server's own CPU)."""
    cpu = time.process_time()
    result, wall = _timed(fn)
    return result, wall, time.process_time() - cpu


def _drain_single(store: StateStore, archive: str, worker: str) -> int:
    done = 0
    while claimed := store.claim(worker=worker, limit=1, lease_seconds=300, archive=archive):
        c = claimed[0]
        store.complete(
            c.archive,
            c.study_uid,
            worker=worker,
            claimed_seq=c.claimed_seq,
            fingerprint=c.fingerprint,
            content_hash="h",
            fhir_id="id",
            fhir_version="1",
            action="create",
        )
        done += 1
    return done


def _drain_batched(store: StateStore, archive: str, worker: str, batch: int) -> int:
    done = 0
    while claimed := store.claim(worker=worker, limit=batch, lease_seconds=300, archive=archive):
        results = store.complete_many(
            [
                Completion(
                    c.archive,
                    c.study_uid,
                    c.claimed_seq,
                    "create",
                    fingerprint=c.fingerprint,
                    content_hash="h",
                    fhir_id="id",
                    fhir_version="1",
                )
                for c in claimed
            ],
            worker=worker,
        )
        done += sum(results)
    return done


def _process_worker(
    url: str, archive: str, worker: str, batch: int, start: Any, result: Any
) -> None:
    store = open_store(url)
    try:
        start.wait(timeout=60)
        result.put(_drain_batched(store, archive, worker, batch))
    finally:
        store.close()


def run(url: str, rows: int, batch: int) -> dict[str, Any]:
    """Run every measurement against ``url``; returns the figures."""
    store = open_store(url)
    figures: dict[str, Any] = {
        "load_average_1m": round(os.getloadavg()[0], 2),
        "dialect": store.dialect,
        "rows": rows,
        "batch": batch,
        "cpus": os.cpu_count(),
    }
    try:
        archive = f"bench-{uuid.uuid4().hex[:8]}"
        items = [(f"2.25.{uuid.uuid4().int}", f"fp-{n}") for n in range(rows)]
        _, t = _timed(lambda: store.mark_many_due(archive, items, reason="backfill"))
        figures["mark_many_due_insert_rows_per_s"] = _rate(rows, t)
        _, t = _timed(lambda: store.mark_many_due(archive, items, reason="poll"))
        figures["mark_many_due_update_rows_per_s"] = _rate(rows, t)
        _, t = _timed(lambda: store.fingerprints(archive, [uid for uid, _ in items]))
        figures["fingerprints_rows_per_s"] = _rate(rows, t)

        single_rows = min(rows, 2000)
        archive = f"bench-{uuid.uuid4().hex[:8]}"
        _fill(store, archive, single_rows)
        n, t, cpu = _timed_cpu(lambda: _drain_single(store, archive, "bench-1"))
        assert n == single_rows, (n, single_rows)
        figures["claim1_complete1_rows_per_s"] = _rate(n, t)
        figures["claim1_complete1_rows_per_cpu_s"] = _rate(n, cpu)

        archive = f"bench-{uuid.uuid4().hex[:8]}"
        _fill(store, archive, rows)
        n, t, cpu = _timed_cpu(lambda: _drain_batched(store, archive, "bench-1", batch))
        assert n == rows, (n, rows)
        figures["claim_batch_complete_many_rows_per_s"] = _rate(n, t)
        figures["claim_batch_complete_many_rows_per_cpu_s"] = _rate(n, cpu)

        archive = f"bench-{uuid.uuid4().hex[:8]}"
        _fill(store, archive, rows)
        ctx = multiprocessing.get_context("spawn")
        start, result = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(
                target=_process_worker, args=(url, archive, f"bench-p{k}", batch, start, result)
            )
            for k in range(2)
        ]
        for p in procs:
            p.start()
        time.sleep(3)  # let both children import and open the store before the clock starts
        started = time.perf_counter()
        start.set()
        counts = [result.get(timeout=600) for _ in procs]
        t = time.perf_counter() - started
        for p in procs:
            p.join()
        assert sum(counts) == rows, (counts, rows)
        figures["two_processes_batch_rows_per_s"] = _rate(rows, t)
        figures["two_processes_split"] = counts
    finally:
        store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="store URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50, help="studies per claim")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        figures = run(url, args.rows, args.batch)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
