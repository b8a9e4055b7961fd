"""The idle cost of a poll: QIDO requests and CPU per cycle when nothing changed.

    .venv/bin/python tests/bench/bench_idle_poll.py
    .venv/bin/python tests/bench/bench_idle_poll.py --sizes 1000,10000,100000 --per-day 50

For each archive size (synthetic DICOMweb archive of ``fakes.py``, the same daily volume
``--per-day`` for every size, the newest study dated today), every study is first recorded
in a SQLite state store as synced with its current fingerprint (a full ``mark_history`` scan,
then claim + ``complete_many``), then ``Poller.poll_once`` (window ``--window-days``) runs
``--cycles`` times.  Reported per cycle: QIDO requests the archive saw, studies in the window,
studies marked due (must be 0), the bridge's CPU (process CPU minus the fake archive's own
handler CPU) and wall time.  The poller asks only for a StudyDate window, so these figures
must follow the window's volume, not the archive's size.  For contrast, the cost of one full
scan of the archive (what a poll would cost without the window) is measured too.
Writes .run/bench/idle_poll.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bridge.archive.client import DicomwebClient  # noqa: E402
from bridge.config import ArchiveSettings, SyncSettings  # noqa: E402
from bridge.state import Completion, open_store  # noqa: E402
from bridge.sync.backfill import mark_history  # noqa: E402
from bridge.sync.poller import Poller  # noqa: E402
from tests.bench.fakes import ARCHIVE_URL, SyntheticArchive  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def one_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    today = date.today()
    archive = SyntheticArchive(size, per_day=args.per_day, last_day=today, seed=args.seed)
    client = DicomwebClient(ArchiveSettings(name="synthetic", base_url=ARCHIVE_URL,
                                            page_size=args.page_size),
                            transport=archive.transport())
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        store = open_store(f"sqlite:///{tmp}/state.db")
        # --- everything already synced -----------------------------------------------------
        marked = await mark_history(client, store, start=archive.first_day, end=today,
                                    window_days=30)
        while claims := store.claim(worker="bench", limit=1000, lease_seconds=600):
            store.complete_many([Completion(c.archive, c.study_uid, c.claimed_seq, "create",
                                            fingerprint=c.fingerprint, content_hash="h",
                                            fhir_id=f"is{n}", fhir_version="1")
                                 for n, c in enumerate(claims)], worker="bench")
        counts = store.counts()

        # --- contrast: one full scan of the archive ----------------------------------------
        req0, cpu0, fake0 = archive.requests["qido-studies"], cpu_seconds(), archive.cpu_seconds
        wall0 = time.perf_counter()
        full = sum([1 async for _ in client.iter_studies()])
        full_scan = {"studies": full,
                     "qido_requests": archive.requests["qido-studies"] - req0,
                     "bridge_cpu_ms": round((cpu_seconds() - cpu0 -
                                             (archive.cpu_seconds - fake0)) * 1000, 2),
                     "wall_ms": round((time.perf_counter() - wall0) * 1000, 2)}

        # --- idle polls ------------------------------------------------------------------------
        poller = Poller([client], store, interval=args.interval, window_days=args.window_days,
                        today=lambda: today)
        await poller.poll_once()  # warm-up (imports, SQLite page cache)
        cycles: list[dict[str, Any]] = []
        for _ in range(args.cycles):
            req0, cpu0, fake0 = (archive.requests["qido-studies"], cpu_seconds(),
                                 archive.cpu_seconds)
            wall0 = time.perf_counter()
            (result,) = await poller.poll_once()
            cycles.append({
                "qido_requests": archive.requests["qido-studies"] - req0,
                "poller_counted_requests": result.requests,
                "seen": result.seen, "due": result.due,
                "bridge_cpu_ms": (cpu_seconds() - cpu0 - (archive.cpu_seconds - fake0)) * 1000,
                "fake_cpu_ms": (archive.cpu_seconds - fake0) * 1000,
                "wall_ms": (time.perf_counter() - wall0) * 1000,
            })
        store.close()
    await client.aclose()
    cpu = [c["bridge_cpu_ms"] for c in cycles]
    wall = [c["wall_ms"] for c in cycles]
    return {
        "archive_studies": size,
        "archive_days": (today - archive.first_day).days + 1,
        "per_day": args.per_day,
        "marked": marked,
        "state_counts": counts,
        "window_days": args.window_days,
        "cycles": len(cycles),
        "qido_requests_per_poll": sorted({c["qido_requests"] for c in cycles}),
        "studies_in_window": sorted({c["seen"] for c in cycles}),
        "due_per_poll": sorted({c["due"] for c in cycles}),
        "bridge_cpu_ms_per_poll_median": round(statistics.median(cpu), 2),
        "bridge_cpu_ms_per_poll_min": round(min(cpu), 2),
        "bridge_cpu_ms_per_poll_max": round(max(cpu), 2),
        "wall_ms_per_poll_median": round(statistics.median(wall), 2),
        "full_scan_contrast": full_scan,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--per-day", type=int, default=50, help="studies per day (all sizes)")
    parser.add_argument("--window-days", type=int, default=SyncSettings().poll_window_days)
    parser.add_argument("--page-size", type=int, default=ArchiveSettings(
        base_url=ARCHIVE_URL).page_size)
    parser.add_argument("--interval", type=float, default=SyncSettings().poll_interval)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", default=str(ROOT / ".run" / "bench" / "idle_poll.json"))
    args = parser.parse_args(argv)
    load_before = load_average()
    results = []
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        r = asyncio.run(one_size(size, args))
        results.append(r)
        fs = r["full_scan_contrast"]
        print(f"{size:>7,} studies ({r['archive_days']} days x {args.per_day}/day), window "
              f"{args.window_days}+1 days: {r['qido_requests_per_poll']} QIDO request(s)/poll, "
              f"{r['studies_in_window']} studies in window, {r['due_per_poll']} due, bridge CPU "
              f"{r['bridge_cpu_ms_per_poll_median']} ms/poll (median; min "
              f"{r['bridge_cpu_ms_per_poll_min']}, max {r['bridge_cpu_ms_per_poll_max']}), wall "
              f"{r['wall_ms_per_poll_median']} ms | full scan: {fs['qido_requests']} requests, "
              f"{fs['bridge_cpu_ms']} ms CPU")
    constant = (len({tuple(r["qido_requests_per_poll"]) for r in results}) == 1
                and all(r["due_per_poll"] == [0] for r in results))
    report = {
        "bench": "idle_poll",
        "settings": {"poll_window_days": args.window_days, "page_size": args.page_size,
                     "per_day": args.per_day, "state": "sqlite (temp dir)"},
        "results": results,
        "requests_constant_and_nothing_due": constant,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    path = write_report(report, args.json)
    print(f"QIDO requests per idle poll independent of archive size and nothing due: "
          f"{'yes' if constant else 'NO'}  (load average {report['load_average_after']}); "
          f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
