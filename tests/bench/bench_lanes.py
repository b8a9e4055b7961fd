"""Benchmark of the work queue's priority lanes (issue 19): prints figures, writes JSON.

    .venv/bin/python tests/bench/bench_lanes.py                         # SQLite in a temp dir
    .venv/bin/python tests/bench/bench_lanes.py --stack .run/stack.json # + PostgreSQL of a stack
    .venv/bin/python tests/bench/bench_lanes.py --backlogs 2000,20000 --batch 50

For each backlog of N bulk studies (``mark_many_due``, reason backfill) and one study
marked afterwards by the STOW proxy, claimed in batches of ``--batch`` (nothing completed,
leases long enough that nothing returns; claims for every archive, as the runner makes
them):

* ``position_without_lanes``: where the STOW study comes in claim order when it waits in
  the same lane as the backlog (marked with reason backfill: the queue's order before
  issue 19, strictly oldest due first): N + 1;
* ``position_with_lanes``: where it comes with its own reason (real-time lane): 1;
* ``claim_ms_p50``: median wall time of one claim of ``--batch`` rows with the backlog
  waiting and real-time work arriving (one index range scan per lane);
* ``bulk_share_measured``: the bulk fraction of 100 claims while real-time work keeps
  arriving faster than it is claimed (the store's ``bulk_share`` is 0.2).

Writes .run/bench/lanes.json (``--json``).  PostgreSQL runs in a schema of its own,
dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bridge.state import Lane, StateStore, open_store  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402


def _uids(count: int) -> list[str]:
    root = f"2.25.{uuid.uuid4().int % 10**20}"
    return [f"{root}.{n}" for n in range(count)]


def _position(store: StateStore, backlog: int, batch: int, *, reason: str) -> int:
    """Claim order (1-based) of a study marked with ``reason`` after ``backlog`` bulk ones."""
    archive = f"bench-{uuid.uuid4().hex[:8]}"
    store.mark_many_due(archive, [(uid, None) for uid in _uids(backlog)], reason="backfill")
    (target,) = _uids(1)
    store.mark_due(archive, target, reason=reason)
    seen = 0
    while claimed := store.claim(worker="bench", limit=batch, lease_seconds=86400):
        for claim in claimed:
            seen += 1
            if claim.study_uid == target:
                return seen
    raise AssertionError("the study was never claimed")


def _claims_under_load(store: StateStore, backlog: int, batch: int) -> dict[str, Any]:
    archive = f"bench-{uuid.uuid4().hex[:8]}"
    store.mark_many_due(archive, [(uid, None) for uid in _uids(backlog)], reason="backfill")
    arriving = iter(_uids(100 * (batch + 2)))
    times: list[float] = []
    bulk = total = 0
    for _ in range(100):
        for _ in range(batch + 2):  # real-time work arrives faster than it is claimed
            store.mark_due(archive, next(arriving), reason="notification")
        started = time.perf_counter()
        claimed = store.claim(worker="bench", limit=batch, lease_seconds=86400)
        times.append(time.perf_counter() - started)
        bulk += sum(c.lane is Lane.BULK for c in claimed)
        total += len(claimed)
    while store.claim(worker="bench", limit=1000, lease_seconds=86400):
        pass  # what is left must not get ahead of the next measurement's study
    return {
        "claim_ms_p50": round(statistics.median(times) * 1000, 2),
        "claim_ms_max": round(max(times) * 1000, 2),
        "bulk_share_measured": round(bulk / total, 3),
    }


def run(url: str, backlogs: list[int], batch: int) -> dict[str, Any]:
    store = open_store(url, bulk_share=0.2)
    try:
        results: dict[str, Any] = {"dialect": store.dialect, "batch": batch,
                                   "bulk_share": store.bulk_share, "backlogs": []}
        for backlog in backlogs:
            row: dict[str, Any] = {"bulk_backlog": backlog}
            row["position_without_lanes"] = _position(store, backlog, batch, reason="backfill")
            row["position_with_lanes"] = _position(store, backlog, batch, reason="stow")
            row.update(_claims_under_load(store, backlog, batch))
            results["backlogs"].append(row)
            print(f"{store.dialect:<10} N={backlog:<7} STOW study claimed at position "
                  f"{row['position_without_lanes']} without lanes, {row['position_with_lanes']} "
                  f"with; claim of {batch}: p50 {row['claim_ms_p50']} ms, max "
                  f"{row['claim_ms_max']} ms; bulk share under load "
                  f"{row['bulk_share_measured']}", flush=True)
        return results
    finally:
        store.close()


@contextlib.contextmanager
def _pg_schema(admin_url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack", type=Path, help="stack.json: also measure its PostgreSQL")
    parser.add_argument("--backlogs", default="2000,20000", help="bulk rows ahead, comma list")
    parser.add_argument("--batch", type=int, default=50, help="studies per claim")
    parser.add_argument("--json", type=Path, default=ROOT / ".run" / "bench" / "lanes.json")
    args = parser.parse_args()
    backlogs = [int(n) for n in args.backlogs.split(",")]
    report: dict[str, Any] = {"load_average_1m": round(os.getloadavg()[0], 2),
                              "cpus": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        report["runs"].append(run(f"sqlite:///{Path(tmp) / 'bench.db'}", backlogs, args.batch))
    if args.stack:
        pg = json.loads(args.stack.read_text())["postgres"]["url"]
        with _pg_schema(pg) as url:
            report["runs"].append(run(url, backlogs, args.batch))
    write_report(report, args.json)
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
