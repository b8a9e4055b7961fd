"""Bridge CPU per study and peak memory while backfilling a large synthetic archive.

    .venv/bin/python tests/bench/bench_scale.py                     # 10,000 and 100,000
    .venv/bin/python tests/bench/bench_scale.py --sizes 10000,30000 --claim-batch 100

Each size runs in a fresh subprocess (so ``ru_maxrss`` is that size's own peak): the real
``mark_history`` and ``SyncRunner`` with a SQLite state store in a temp dir, against the
in-process synthetic DICOMweb archive and fast FHIR sink of ``fakes.py`` (studies of the
samples generator's "small" profile: 1-2 series, 1-5 instances).  VmRSS is sampled every
10,000 studies to show it stays flat.  CPU is the process's user+system time (all threads,
SQLite included) minus the time the two fakes spend in their own handlers.

Targets (issue 4): peak RSS <= 250 MB and flat as the count grows.
Writes .run/bench/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bridge.archive.client import DicomwebClient  # noqa: E402
from bridge.config import ArchiveSettings, FhirSettings, SyncSettings  # noqa: E402
from bridge.fhir.client import FhirClient  # noqa: E402
from bridge.mapping import MappingEngine, load_mapping  # noqa: E402
from bridge.state import open_store  # noqa: E402
from bridge.sync.backfill import mark_history  # noqa: E402
from bridge.sync.runner import DrainStats, SyncRunner  # noqa: E402
from tests.bench.fakes import ARCHIVE_URL, FHIR_URL, FastFhirSink, SyntheticArchive  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402

SAMPLE_EVERY = 10_000
RSS_TARGET_MB = 250


def vm_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def run_size(args: argparse.Namespace) -> dict[str, Any]:
    count = args.studies
    archive = SyntheticArchive(count, per_day=args.per_day, seed=args.seed)
    sink = FastFhirSink()
    engine = MappingEngine(load_mapping([str(ROOT / "mappings" / "default.yaml")]))
    tmp = tempfile.TemporaryDirectory(prefix="bench-scale-")
    store = open_store(f"sqlite:///{tmp.name}/state.db")
    sync = SyncSettings(claim_batch=args.claim_batch)
    fhir_settings = FhirSettings(base_url=FHIR_URL, batch_size=args.batch_size,
                                 concurrency=args.concurrency)
    dicomweb = DicomwebClient(ArchiveSettings(name="synthetic", base_url=ARCHIVE_URL,
                                              concurrency=args.concurrency),
                              transport=archive.transport())
    fhir = FhirClient(fhir_settings, transport=sink.transport())
    runner = SyncRunner(store=store, archives={"synthetic": dicomweb}, fhir=fhir,
                        engine=engine, sync=sync, fhir_settings=fhir_settings,
                        worker_id="bench")
    samples: list[dict[str, Any]] = [{"studies": 0, "vm_rss_mb": round(vm_rss_mb(), 1),
                                      "phase": "start"}]

    def fake_cpu() -> float:
        return archive.cpu_seconds + sink.cpu_seconds

    # --- phase 1: scan the archive's history and mark every study due -------------------------
    cpu0, fake0, wall0 = cpu_seconds(), fake_cpu(), time.perf_counter()
    marked = await mark_history(dicomweb, store, start=archive.first_day, end=archive.last_day,
                                window_days=30)
    scan = {"wall_s": time.perf_counter() - wall0, "cpu_s": cpu_seconds() - cpu0,
            "fake_cpu_s": fake_cpu() - fake0, "studies_marked": marked}
    samples.append({"studies": 0, "vm_rss_mb": round(vm_rss_mb(), 1), "phase": "marked"})

    # --- phase 2: drain the queue ---------------------------------------------------------------
    stats = DrainStats()
    cpu1, fake1, wall1 = cpu_seconds(), fake_cpu(), time.perf_counter()
    next_sample = SAMPLE_EVERY
    last = (cpu1, fake1, wall1, 0)
    while await runner.run_once(stats):
        if stats.processed >= next_sample:
            c, f, w = cpu_seconds(), fake_cpu(), time.perf_counter()
            n = stats.processed - last[3]
            samples.append({
                "studies": stats.processed, "vm_rss_mb": round(vm_rss_mb(), 1),
                "bridge_cpu_ms_per_study": round(((c - last[0]) - (f - last[1])) * 1000 / n, 3),
                "studies_per_s": round(n / (w - last[2]), 1),
            })
            print(f"  {stats.processed:>7} studies  VmRSS {samples[-1]['vm_rss_mb']:6.1f} MB  "
                  f"{samples[-1]['bridge_cpu_ms_per_study']:.2f} ms CPU/study  "
                  f"{samples[-1]['studies_per_s']:.0f} studies/s  load {load_average()}",
                  file=sys.stderr, flush=True)
            last = (c, f, w, stats.processed)
            next_sample += SAMPLE_EVERY
    drain_wall = time.perf_counter() - wall1
    drain_cpu = cpu_seconds() - cpu1
    drain_fake = fake_cpu() - fake1
    samples.append({"studies": stats.processed, "vm_rss_mb": round(vm_rss_mb(), 1),
                    "phase": "drained"})
    counts = store.counts()
    await dicomweb.aclose()
    await fhir.aclose()
    store.close()
    tmp.cleanup()

    bridge_cpu = (scan["cpu_s"] - scan["fake_cpu_s"]) + (drain_cpu - drain_fake)
    rss_after_start = [s["vm_rss_mb"] for s in samples if s["studies"] >= SAMPLE_EVERY]
    return {
        "studies": count,
        "synced": stats.synced,
        "failed": stats.failed,
        "retried": stats.retried,
        "state_counts": counts,
        "fhir_entries": dict(sink.entries),
        "fhir_requests": dict(sink.requests),
        "archive_requests": dict(archive.requests),
        "scan": {k: round(v, 3) if isinstance(v, float) else v for k, v in scan.items()},
        "drain_wall_s": round(drain_wall, 2),
        "drain_studies_per_s": round(stats.processed / drain_wall, 1),
        "drain_cpu_s": round(drain_cpu, 2),
        "fakes_cpu_s": round(drain_fake, 2),
        "bridge_cpu_ms_per_study": round(bridge_cpu * 1000 / count, 3),
        "bridge_cpu_ms_per_study_drain_only": round((drain_cpu - drain_fake) * 1000 / count, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_samples": samples,
        "rss_spread_after_first_sample_mb": round(max(rss_after_start) - min(rss_after_start), 1)
        if rss_after_start else None,
        "load_average_end": load_average(),
    }


def child(args: argparse.Namespace) -> int:
    result = asyncio.run(run_size(args))
    Path(args.child_out).write_text(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated study counts, each in its own process")
    parser.add_argument("--per-day", type=int, default=100, help="studies per StudyDate day")
    parser.add_argument("--claim-batch", type=int, default=SyncSettings().claim_batch)
    parser.add_argument("--batch-size", type=int, default=FhirSettings().batch_size)
    parser.add_argument("--concurrency", type=int, default=FhirSettings().concurrency)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=str(ROOT / ".run" / "bench" / "scale.json"))
    parser.add_argument("--studies", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_out:
        return child(args)

    results = []
    load_before = load_average()
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        print(f"backfilling {size:,} synthetic studies in a fresh process ...", file=sys.stderr)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, __file__, "--studies", str(size), "--child-out", out.name,
                   "--per-day", str(args.per_day), "--claim-batch", str(args.claim_batch),
                   "--batch-size", str(args.batch_size), "--concurrency",
                   str(args.concurrency), "--seed", str(args.seed)]
            started = time.perf_counter()
            subprocess.run(cmd, check=True)
            r = json.loads(Path(out.name).read_text())
            r["total_wall_s"] = round(time.perf_counter() - started, 1)
        results.append(r)
        print(f"{size:>7,} studies: peak RSS {r['peak_rss_mb']:.1f} MB, bridge CPU "
              f"{r['bridge_cpu_ms_per_study']:.2f} ms/study (drain only "
              f"{r['bridge_cpu_ms_per_study_drain_only']:.2f}), drain "
              f"{r['drain_studies_per_s']:.0f} studies/s, synced {r['synced']}, "
              f"failed {r['failed']}, VmRSS samples "
              f"{[s['vm_rss_mb'] for s in r['rss_samples']]}")
    peaks = [r["peak_rss_mb"] for r in results]
    report = {
        "bench": "scale",
        "profile": "small (samples.generator templates, 1-2 series, 1-5 instances)",
        "settings": {"claim_batch": args.claim_batch, "fhir.batch_size": args.batch_size,
                     "concurrency": args.concurrency, "state": "sqlite (temp dir)",
                     "per_day": args.per_day, "backfill_window_days": 30},
        "results": results,
        "target_peak_rss_mb": RSS_TARGET_MB,
        "peak_rss_ok": all(p <= RSS_TARGET_MB for p in peaks),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    path = write_report(report, args.json)
    print(f"peak RSS target <= {RSS_TARGET_MB} MB: {'met' if report['peak_rss_ok'] else 'MISSED'}"
          f"  (load average {report['load_average_after']}); wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
