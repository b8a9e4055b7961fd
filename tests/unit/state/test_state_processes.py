"""Several worker *processes* on one SQLite file: exclusive claims, nothing left behind."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

from state_helpers import HEAD
from state_workers import drain, open_and_report

from bridge.state import StateStore

A = "archive-a"
SPAWN = multiprocessing.get_context("spawn")


def run_workers(target: Any, arg_sets: list[tuple[Any, ...]], start: Any) -> None:
    procs = [SPAWN.Process(target=target, args=args) for args in arg_sets]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_two_processes_never_claim_the_same_study_and_drain_the_queue(
    store: StateStore, db_url: str, tmp_path: Path
) -> None:
    uids = [f"2.25.{n}" for n in range(2000)]
    store.mark_many_due(A, [(uid, None) for uid in uids], reason="backfill")
    start = SPAWN.Event()
    outs = [tmp_path / "w1.json", tmp_path / "w2.json"]

    run_workers(
        drain,
        [(db_url, f"w{n + 1}", A, 20, start, str(out)) for n, out in enumerate(outs)],
        start,
    )

    records = [r for out in outs for r in json.loads(out.read_text())]
    claims = Counter(r[0] for r in records)
    assert set(claims) == set(uids)  # none left behind
    assert max(claims.values()) == 1  # leases never expired, so never claimed twice
    assert all(r[4] for r in records)  # every completion was accepted
    per_worker = Counter(r[1] for r in records)
    assert per_worker["w1"] > 0 and per_worker["w2"] > 0  # both really worked
    assert store.counts(A)["synced"] == len(uids)
    assert store.queue_depth() == 0


def test_processes_opening_a_new_store_at_once_all_succeed(db_url: str, tmp_path: Path) -> None:
    start = SPAWN.Event()
    outs = [tmp_path / f"open{n}.json" for n in range(3)]

    run_workers(open_and_report, [(db_url, start, str(out)) for out in outs], start)

    assert [json.loads(out.read_text()) for out in outs] == [HEAD] * 3
