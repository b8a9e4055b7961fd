"""The bridge's own CPU per study, each saving of issue 19 measured against its former
code path in the same run (in-process fakes, no servers).

    .venv/bin/python tests/bench/bench_cpu.py                  # 1,000 studies x 5 rounds
    .venv/bin/python tests/bench/bench_cpu.py --studies 2000 --rounds 7 --profile

What one measurement is: the real ``mark_history`` scan and ``SyncRunner`` drain of
``--studies`` studies (samples generator profile "small": 1-2 series, 1-5 instances) from
``fakes.SyntheticArchive`` into ``fakes.FastFhirSink``, a SQLite state store in a temp dir;
CPU is the process's user+system time (every thread, SQLite's included) minus the time
the two fakes spend in their handlers, divided by the studies.

Variants, alternated within each round so a change of machine load hits them alike:

* ``now``: the code as it is;
* ``former``: every saving of :mod:`cpu_paths` undone (the code before issue 19);
* ``without <saving>``: only that saving undone: its figure is what it saves now.

Reported: the median ms CPU per study of each variant, each saving's share, drain
throughput, the load average; ``--profile`` adds the top functions of one ``now`` drain
(cProfile, by own time).  Writes .run/bench/cpu.json.  Target (issue 19): <= 1.5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import statistics
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
from bridge.jsonbytes import dumps as fhir_dumps  # noqa: E402
from bridge.mapping import MappingEngine, load_mapping  # noqa: E402
from bridge.state import open_store  # noqa: E402
from bridge.sync.backfill import mark_history  # noqa: E402
from bridge.sync.heap import freeze_startup_heap  # noqa: E402
from bridge.sync.runner import DrainStats, SyncRunner  # noqa: E402
from tests.bench.cpu_paths import SAVINGS, former  # noqa: E402
from tests.bench.fakes import ARCHIVE_URL, FHIR_URL, FastFhirSink, SyntheticArchive  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402

TARGET_MS = 1.5


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def one_backfill(args: argparse.Namespace, engine: MappingEngine, seed: int,
                       profiler: cProfile.Profile | None = None) -> dict[str, float]:
    archive = SyntheticArchive(args.studies, per_day=args.per_day, seed=seed)
    sink = FastFhirSink()
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        store = open_store(f"sqlite:///{tmp}/state.db")
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
        stats = DrainStats()
        cpu0, fakes0, wall0 = cpu_seconds(), archive.cpu_seconds + sink.cpu_seconds, \
            time.perf_counter()
        if profiler:
            profiler.enable()
        await mark_history(dicomweb, store, start=archive.first_day, end=archive.last_day,
                           window_days=30)
        while await runner.run_once(stats):
            pass
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - wall0
        bridge = (cpu_seconds() - cpu0) - (archive.cpu_seconds + sink.cpu_seconds - fakes0)
        await dicomweb.aclose()
        await fhir.aclose()
        store.close()
    if stats.synced != args.studies:
        raise SystemExit(f"synced {stats.synced} of {args.studies}: {stats}")
    return {"ms_per_study": bridge * 1000 / args.studies,
            "studies_per_s": args.studies / wall}


def micro(engine: MappingEngine, repeat: int = 2000) -> dict[str, dict[str, float]]:
    """Per-operation CPU (us) of each JSON/HTTP saving, former vs now, on one synthetic
    study (its WADO-RS metadata and mapped ImagingStudy): figures too small to stand out
    of a whole drain's noise."""
    import copy as copy_module

    import httpx

    import bridge.mapping.canonical as canonical
    from bridge.httpclient import _Cookies
    from bridge.jsonbytes import loads
    from bridge.mapping import EndpointSpec
    from tests.bench.cpu_paths import _httpx_json_dumps

    archive = SyntheticArchive(50, per_day=50, seed=5)
    body = archive.metadata(3)
    result = engine.map_study(json.loads(body), endpoint=EndpointSpec(
        id_or_ref=None, address=ARCHIVE_URL, name="synthetic"))
    study = result.imaging_study
    request = httpx.Request("GET", ARCHIVE_URL + "/studies/1/metadata")
    response = httpx.Response(200, content=body, request=request)

    def us(fn: Any) -> float:
        start = time.process_time()
        for _ in range(repeat):
            fn()
        return round((time.process_time() - start) * 1e6 / repeat, 1)

    jar_old, jar_new = httpx.Cookies(), _Cookies()
    return {
        "canonical_json (x2 per study)": {"former": us(lambda: canonical._stdlib_json(study)),
                                          "now": us(lambda: canonical.canonical_json(study))},
        "copy of the ImagingStudy": {"former": us(lambda: copy_module.deepcopy(study)),
                                     "now": us(lambda: canonical.json_copy(study))},
        f"read WADO-RS metadata ({len(body)} bytes)": {"former": us(lambda: json.loads(body)),
                                                        "now": us(lambda: loads(body))},
        "write the ImagingStudy (FHIR body)": {"former": us(lambda: _httpx_json_dumps(study)),
                                               "now": us(lambda: fhir_dumps(study))},
        "cookie jar per response": {"former": us(lambda: jar_old.extract_cookies(response)),
                                    "now": us(lambda: jar_new.extract_cookies(response))},
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    engine = MappingEngine(load_mapping([str(ROOT / "mappings" / "default.yaml")]))
    await one_backfill(argparse.Namespace(**{**vars(args), "studies": 200}), engine, 99)
    freeze_startup_heap()  # as the composition root does, once set up
    report_micro = micro(engine)
    variants: dict[str, list[str]] = {"now": [], "former": list(SAVINGS)}
    variants.update({f"without {s}": [s] for s in SAVINGS})
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            with former(variants[name]):
                runs[name].append(await one_backfill(args, engine, seed=r * 100 + len(runs)))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {runs[n][-1]['ms_per_study']:.2f}" for n in names) + f" ms/study; load "
            f"{os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    median = {n: statistics.median(x["ms_per_study"] for x in runs[n]) for n in names}
    report: dict[str, Any] = {
        "bench": "cpu",
        "studies": args.studies, "rounds": args.rounds,
        "settings": {"claim_batch": args.claim_batch, "fhir.batch_size": args.batch_size,
                     "concurrency": args.concurrency, "state": "sqlite (temp dir)",
                     "fakes": "SyntheticArchive + FastFhirSink (their CPU subtracted)"},
        "median_ms_per_study": {n: round(v, 3) for n, v in median.items()},
        "savings_ms_per_study": {s: round(median[f"without {s}"] - median["now"], 3)
                                 for s in SAVINGS},
        "all_savings_ms_per_study": round(median["former"] - median["now"], 3),
        "micro_us_per_operation": report_micro,
        "median_studies_per_s": {n: round(statistics.median(x["studies_per_s"]
                                                            for x in runs[n]), 1)
                                 for n in names},
        "runs_ms_per_study": {n: [round(x["ms_per_study"], 3) for x in runs[n]] for n in names},
        "target_ms": TARGET_MS,
        "target_met": median["now"] <= TARGET_MS,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if args.profile:
        profiler = cProfile.Profile()
        await one_backfill(args, engine, seed=7, profiler=profiler)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        report["profile_top_tottime"] = out.getvalue().splitlines()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-day", type=int, default=100)
    parser.add_argument("--claim-batch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", action="store_true",
                        help="add cProfile's top functions of one drain")
    parser.add_argument("--json", default=str(ROOT / ".run" / "bench" / "cpu.json"))
    args = parser.parse_args(argv)
    report = asyncio.run(bench(args))
    m = report["median_ms_per_study"]
    print(f"bridge CPU per study (median of {args.rounds} x {args.studies} studies): now "
          f"{m['now']:.2f} ms, former {m['former']:.2f} ms (all savings "
          f"{report['all_savings_ms_per_study']:.2f} ms); target <= {TARGET_MS} ms: "
          f"{'met' if report['target_met'] else 'MISSED'}")
    for saving, ms in report["savings_ms_per_study"].items():
        print(f"  {saving:<18} saves {ms:6.3f} ms/study (without it: "
              f"{m['without ' + saving]:.2f} ms)")
    for op, figures in report["micro_us_per_operation"].items():
        print(f"  {op:<42} {figures['former']:8.1f} us -> {figures['now']:7.1f} us")
    for line in report.get("profile_top_tottime", [])[:40]:
        print(line)
    path = write_report(report, args.json)
    print(f"wrote {path}  (load average {report['load_average_end']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
