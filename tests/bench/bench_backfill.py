"""End-to-end backfill from a real Orthanc into a real HAPI FHIR, against a naive baseline.

    .venv/bin/python tests/bench/bench_backfill.py --stack /tmp/lead/stack.json
    .venv/bin/python tests/bench/bench_backfill.py --studies 1000 --profile small \\
        --claim-batch 100 --batch-size 25 --concurrency 8
    .venv/bin/python tests/bench/bench_backfill.py            # starts Orthanc + HAPI itself

Two disjoint sets of generated studies (``samples.generator``, profile ``small`` by
default: 1-2 series, 1-5 instances) are loaded into Orthanc and their Patients and
ServiceRequests seeded into HAPI, so both contenders do real creates:

* **bridge**: ``mark_history`` over the whole archive (a real QIDO scan; only this set's
  studies are queued) then ``SyncRunner.drain_until_settled``, SQLite state in a temp dir,
  exactly what ``imaging-bridge backfill`` does;
* **baseline** (DICOM Cast style, written here): one study at a time, one request per
  resource: QIDO the study, WADO-RS metadata, map with the same ``MappingEngine``, search
  the Patient, conditional-create the Endpoint, ``PUT ImagingStudy?identifier=...``.  It
  does *not* resolve ServiceRequests (the bridge does), so the ratio is conservative.

Both use the bridge's own HTTP clients, so only the architecture differs.  Reported:
studies/s of each and the ratio (target: bridge >= 5x), the bridge's settings, and where
the bridge's time went (its own CPU, Orthanc's and HAPI's CPU, summed request latency).
Writes .run/bench/backfill.json.  The servers are shared: the load average is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docker" / "local"))

import devstack  # noqa: E402

from bridge.archive.client import DicomwebClient  # noqa: E402
from bridge.config import (  # noqa: E402
    ArchiveSettings,
    AuthSettings,
    FhirSettings,
    SyncSettings,
)
from bridge.fhir.client import FhirClient  # noqa: E402
from bridge.mapping import EndpointSpec, MappingEngine, load_mapping  # noqa: E402
from bridge.state import StateStore, open_store  # noqa: E402
from bridge.sync.assemble import assemble, with_bridge_tag  # noqa: E402
from bridge.sync.backfill import BackfillProgress, backfill, mark_history  # noqa: E402
from bridge.sync.heap import freeze_startup_heap  # noqa: E402
from bridge.sync.references import ENDPOINT_ID_SYSTEM, identifier_query  # noqa: E402
from bridge.sync.runner import DrainStats, SyncRunner  # noqa: E402
from samples.generator import GeneratedStudy, generate_studies  # noqa: E402
from samples.load import load_studies  # noqa: E402
from samples.seed_ehr import seed_ehr  # noqa: E402
from tests.bench.cpu_paths import SAVINGS, former  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402

TARGET_RATIO = 5.0
#: issue 19: the bridge's own CPU per study, end to end, and the share of the servers-only
#: ceiling (the machine's cores divided by the servers' CPU per study) the backfill reaches
TARGET_CPU_MS = 1.5
TARGET_OF_CEILING = 0.85


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid: int | None) -> float | None:
    """User+system CPU seconds of another process (a server), or None."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TimingTransport(httpx.AsyncBaseTransport):
    """The default transport (same connection limits as the clients set), plus a sum of
    request latencies per kind."""

    def __init__(self, label: str, max_connections: int) -> None:
        self._inner = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=max_connections))
        self.label = label
        self.seconds: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)

    def _kind(self, request: httpx.Request) -> str:
        path = request.url.path
        if path.endswith("/metadata"):
            return "wado-metadata"
        if path.rstrip("/").endswith("/studies"):
            return "qido-studies"
        tail = path.rstrip("/").rsplit("/", 1)[-1]
        if request.method == "POST" and tail == "fhir":
            return "fhir-batch"
        return f"fhir-{request.method} {tail}"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        kind = self._kind(request)
        started = time.perf_counter()
        response = await self._inner.handle_async_request(request)
        await response.aread()
        self.seconds[kind] += time.perf_counter() - started
        self.count[kind] += 1
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def summary(self) -> dict[str, Any]:
        return {k: {"requests": self.count[k], "latency_sum_s": round(self.seconds[k], 2),
                    "mean_ms": round(self.seconds[k] * 1000 / self.count[k], 1)}
                for k in sorted(self.count)}


class OnlyThese:
    """A StateStore seen through a filter: ``mark_many_due`` keeps only the given studies.

    The archive is shared (other runs, the baseline's set): the bridge scans all of it,
    as a real backfill does, but queues only its own set."""

    def __init__(self, store: StateStore, uids: set[str]) -> None:
        self._store = store
        self._uids = uids
        self.scanned = 0

    def mark_many_due(self, archive: str, items: Any, *, reason: Any) -> int:
        items = list(items)
        self.scanned += len(items)
        return self._store.mark_many_due(
            archive, [(u, f) for u, f in items if u in self._uids], reason=reason)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@contextlib.contextmanager
def servers(stack_path: str | None) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    if stack_path:
        state = devstack.load_state(stack_path)
        yield state["orthanc"], state["hapi"], json.loads(Path(stack_path).read_text())
        return
    stack = devstack.Stack().start(["orthanc", "hapi"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = stack.write_state(Path(tmp) / "stack.json")
            state = devstack.load_state(path)
            raw = json.loads(path.read_text())
        yield state["orthanc"], state["hapi"], raw
    finally:
        stack.stop()


def archive_settings(orthanc: Any, name: str, concurrency: int) -> ArchiveSettings:
    return ArchiveSettings(
        name=name, base_url=orthanc.dicomweb_url, concurrency=concurrency,
        auth=AuthSettings(kind="basic", username=orthanc.username, password=orthanc.password))


def prepare(studies: list[GeneratedStudy], orthanc: Any, hapi: Any, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    loaded = load_studies(studies, url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password, parallelism=4)
    if loaded.failed_studies:
        raise SystemExit(f"loading into Orthanc failed: {loaded.errors[:3]}")
    seeded = seed_ehr([s.truth for s in studies], fhir_url=hapi.fhir_url, seed=seed)
    if not seeded.ok:
        raise SystemExit(f"seeding HAPI failed: {seeded.summary()}")
    return {"studies": len(studies), "instances": loaded.instances,
            "seconds": round(time.perf_counter() - started, 1)}


async def run_bridge(args: argparse.Namespace, orthanc: Any, hapi: Any, archive_name: str,
                     studies: list[GeneratedStudy], engine: MappingEngine,
                     pids: dict[str, int | None]) -> dict[str, Any]:
    uids = {s.study_uid for s in studies}
    dates = sorted(s.truth.study_date for s in studies)
    start = date.fromisoformat(f"{dates[0][:4]}-{dates[0][4:6]}-{dates[0][6:]}")
    end = date.fromisoformat(f"{dates[-1][:4]}-{dates[-1][4:6]}-{dates[-1][6:]}")
    a_settings = archive_settings(orthanc, archive_name, args.concurrency)
    f_settings = FhirSettings(base_url=hapi.fhir_url, batch_size=args.batch_size,
                              concurrency=args.concurrency)
    sync = SyncSettings(claim_batch=args.claim_batch, workers=args.workers,
                        backfill_window_days=args.window_days)
    a_tx = TimingTransport("archive", a_settings.concurrency * 2)
    f_tx = TimingTransport("fhir", f_settings.concurrency * 2)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        store = open_store(f"sqlite:///{tmp}/state.db")
        archive = DicomwebClient(a_settings, transport=a_tx)
        fhir = FhirClient(f_settings, transport=f_tx)
        runner = SyncRunner(store=store, archives={archive_name: archive}, fhir=fhir,
                            engine=engine, sync=sync, fhir_settings=f_settings,
                            worker_id="bench")
        filtered = OnlyThese(store, uids)
        adaptive = not args.fixed_windows
        servers0 = {k: proc_cpu(p) for k, p in pids.items()}
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        scan_end = [wall0]

        def on_window(_name: str, _p: BackfillProgress) -> None:
            scan_end[0] = time.perf_counter()

        stats = DrainStats()
        if args.sequential:
            # the former way: the whole scan, then the drain
            marked = await mark_history(archive, filtered, start=start, end=end,  # type: ignore[arg-type]
                                        window_days=sync.backfill_window_days,
                                        adaptive=adaptive,
                                        concurrency=args.scan_concurrency)
            scan_end[0] = time.perf_counter()
            drains = await asyncio.gather(*(runner.drain_until_settled(max_idle=30.0)
                                            for _ in range(args.workers)))
            for d in drains:
                for f in ("synced", "unchanged", "retried", "failed", "batches"):
                    setattr(stats, f, getattr(stats, f) + getattr(d, f))
        else:
            # what `imaging-bridge backfill` does: the drain overlaps the scan
            result = await backfill(runner, [archive], store=filtered,  # type: ignore[arg-type]
                                    start=start, end=end, window_days=sync.backfill_window_days,
                                    adaptive=adaptive, scan_concurrency=args.scan_concurrency,
                                    max_idle=30.0, workers=args.workers,
                                    on_window=on_window)
            marked, stats = result.marked, result.stats
        scan_wall = scan_end[0] - wall0
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
        servers1 = {k: proc_cpu(p) for k, p in pids.items()}
        counts = store.counts()
        await archive.aclose()
        await fhir.aclose()
        store.close()
    return {
        "studies": len(studies),
        "marked": marked,
        "archive_studies_scanned": filtered.scanned,
        "synced": stats.synced, "unchanged": stats.unchanged, "retried": stats.retried,
        "failed": stats.failed, "batches": stats.batches, "state_counts": counts,
        "scan_wall_s": round(scan_wall, 2),
        "wall_s": round(wall, 2),
        "studies_per_s": round(len(studies) / wall, 2),
        "bridge_cpu_s": round(cpu, 2),
        "bridge_cpu_ms_per_study": round(cpu * 1000 / len(studies), 2),
        "server_cpu_s": {k: round(servers1[k] - v, 2) if v is not None and servers1[k]
                         is not None else None for k, v in servers0.items()},
        **per_study_figures(len(studies), wall, cpu, servers0, servers1),
        "archive_http": a_tx.summary(),
        "fhir_http": f_tx.summary(),
    }


def per_study_figures(n: int, wall: float, cpu: float, servers0: dict[str, float | None],
                      servers1: dict[str, float | None]) -> dict[str, Any]:
    """Issue 19's figures: CPU per study of the bridge and of each server, and the
    throughput against the servers-only ceiling (cores / servers' CPU per study)."""
    server_ms = {k: round((servers1[k] - v) * 1000 / n, 2)  # type: ignore[operator]
                 if v is not None and servers1[k] is not None else None
                 for k, v in servers0.items()}
    known = [v for v in server_ms.values() if v is not None]
    ceiling = (os.cpu_count() or 1) * 1000 / sum(known) if known and sum(known) > 0 else None
    return {
        "server_cpu_ms_per_study": server_ms,
        "servers_only_ceiling_studies_per_s": round(ceiling, 1) if ceiling else None,
        "of_ceiling": round(n / wall / ceiling, 3) if ceiling else None,
        "cpu_target_met": cpu * 1000 / n <= TARGET_CPU_MS,
    }


async def run_baseline(args: argparse.Namespace, orthanc: Any, hapi: Any, archive_name: str,
                       studies: list[GeneratedStudy], engine: MappingEngine,
                       pids: dict[str, int | None]) -> dict[str, Any]:
    """DICOM Cast style: one study at a time, one FHIR request per resource."""
    a_settings = archive_settings(orthanc, archive_name, 1)
    f_settings = FhirSettings(base_url=hapi.fhir_url, concurrency=1)
    a_tx = TimingTransport("archive", 2)
    f_tx = TimingTransport("fhir", 2)
    archive = DicomwebClient(a_settings, transport=a_tx)
    fhir = FhirClient(f_settings, transport=f_tx)
    spec = EndpointSpec(id_or_ref=None, address=archive.base_url, name=archive_name)
    created = updated = failed = 0
    errors: list[str] = []
    servers0 = {k: proc_cpu(p) for k, p in pids.items()}
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    for study in studies:
        uid = study.study_uid
        try:
            await archive.study(uid)                          # QIDO the study
            instances = await archive.study_instances(uid)    # WADO-RS metadata
            result = engine.map_study(instances, endpoint=spec)
            pkey = (result.patient.system, result.patient.value or "")
            found = await fhir.search("Patient", [("identifier", f"{pkey[0]}|{pkey[1]}")])
            entries = found.get("entry") or []
            patient_ref = f"Patient/{entries[0]['resource']['id']}" if entries else None
            endpoint = with_bridge_tag(dict(result.endpoint))
            if not endpoint.get("identifier"):
                endpoint["identifier"] = [{"system": ENDPOINT_ID_SYSTEM, "value": archive_name}]
            ident = endpoint["identifier"][0]
            ekey = (str(ident.get("system", ENDPOINT_ID_SYSTEM)),
                    str(ident.get("value", archive_name)))
            resp = await fhir.request(
                "POST", "Endpoint", interaction="create-endpoint", json=endpoint,
                headers={"If-None-Exist": f"identifier={identifier_query(ekey)}"})
            body = resp.json() if resp.content else {}
            endpoint_ref = f"Endpoint/{body['id']}" if body.get("id") else None
            resource_ = with_bridge_tag(assemble(
                result.imaging_study, patient_reference=patient_ref, service_requests={},
                endpoint_reference=endpoint_ref))
            put = await fhir.request(
                "PUT", f"ImagingStudy?identifier="
                f"{identifier_query(('urn:dicom:uid', f'urn:oid:{uid}'))}",
                interaction="update", json=resource_)
            if put.status_code == 201:
                created += 1
            else:
                updated += 1
        except Exception as exc:  # a baseline failure is counted, not fatal
            failed += 1
            errors.append(f"{uid}: {type(exc).__name__}: {exc}"[:300])
    wall = time.perf_counter() - wall0
    cpu = cpu_seconds() - cpu0
    servers1 = {k: proc_cpu(p) for k, p in pids.items()}
    await archive.aclose()
    await fhir.aclose()
    return {
        "studies": len(studies), "created": created, "updated": updated, "failed": failed,
        "errors": errors[:5],
        "wall_s": round(wall, 2),
        "studies_per_s": round(len(studies) / wall, 2),
        "client_cpu_s": round(cpu, 2),
        "server_cpu_s": {k: round(servers1[k] - v, 2) if v is not None and servers1[k]
                         is not None else None for k, v in servers0.items()},
        "archive_http": a_tx.summary(),
        "fhir_http": f_tx.summary(),
    }


async def check_sample(hapi: Any, studies: list[GeneratedStudy], k: int = 25) -> dict[str, int]:
    """Exactly one ImagingStudy per study, for a sample of each set."""
    step = max(1, len(studies) // k)
    counts: dict[str, int] = defaultdict(int)
    async with httpx.AsyncClient(base_url=hapi.fhir_url + "/", timeout=60) as client:
        for s in studies[::step]:
            resp = await client.get("ImagingStudy", params={
                "identifier": f"urn:dicom:uid|urn:oid:{s.study_uid}", "_summary": "count"})
            counts[f"{resp.json().get('total')} match"] += 1
    return dict(counts)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    token = secrets.token_hex(3).upper()
    seed = int(token, 16)
    engine = MappingEngine(load_mapping([str(ROOT / "mappings" / "default.yaml")]))
    report: dict[str, Any] = {"bench": "backfill", "token": token, "profile": args.profile}
    with servers(args.stack) as (orthanc, hapi, raw):
        pids = {"orthanc": raw.get("orthanc", {}).get("pid"),
                "hapi": raw.get("hapi", {}).get("pid")}
        bridge_set = list(generate_studies(args.studies, seed=seed, profile=args.profile,
                                           id_prefix=f"B{token[:5]}"))
        base_n = args.baseline_studies if args.baseline_studies is not None else args.studies
        base_set = list(generate_studies(base_n, seed=seed + 1, profile=args.profile,
                                         id_prefix=f"N{token[:5]}"))
        former_set = list(generate_studies(args.studies, seed=seed + 2, profile=args.profile,
                                           id_prefix=f"F{token[:5]}")) \
            if args.former_paths else []
        print(f"loading {len(bridge_set)} + {len(base_set)} + {len(former_set)} "
              f"'{args.profile}' studies into Orthanc and seeding HAPI ...", file=sys.stderr,
              flush=True)
        report["prepare"] = {"bridge_set": prepare(bridge_set, orthanc, hapi, seed),
                             "baseline_set": prepare(base_set, orthanc, hapi, seed + 1)}
        if former_set:
            report["prepare"]["former_set"] = prepare(former_set, orthanc, hapi, seed + 2)
        # a fresh archive name per run: a fresh Endpoint, no interference with other runs
        report["load_average_start"] = load_average()
        freeze_startup_heap()  # as imaging-bridge's composition root does, once set up
        print(f"baseline: {len(base_set)} studies, one at a time ...", file=sys.stderr,
              flush=True)
        report["baseline"] = await run_baseline(args, orthanc, hapi, f"naive-{token}",
                                                base_set, engine, pids)
        report["load_average_after_baseline"] = load_average()
        print(f"  {report['baseline']['studies_per_s']} studies/s", file=sys.stderr)
        print(f"bridge: {len(bridge_set)} studies ...", file=sys.stderr, flush=True)
        if former_set:
            undone = args.former or list(SAVINGS)
            report["former_savings"] = undone
            print(f"bridge with the former code paths ({', '.join(undone)}): "
                  f"{len(former_set)} studies ...", file=sys.stderr, flush=True)
            with former(undone):
                report["bridge_former_paths"] = await run_bridge(
                    args, orthanc, hapi, f"former-{token}", former_set, engine, pids)
            print(f"  {report['bridge_former_paths']['bridge_cpu_ms_per_study']} ms CPU/study",
                  file=sys.stderr)
        # CPU of the event loop's thread (not wall time: the machine is shared)
        profiler = cProfile.Profile(time.thread_time) if args.profile_bridge else None
        if profiler:
            profiler.enable()
        report["bridge"] = await run_bridge(args, orthanc, hapi, f"bench-{token}",
                                            bridge_set, engine, pids)
        if profiler:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
            report["bridge_profile_top_tottime"] = out.getvalue().splitlines()
        report["load_average_after_bridge"] = load_average()
        print(f"  {report['bridge']['studies_per_s']} studies/s, "
              f"{report['bridge']['bridge_cpu_ms_per_study']} ms CPU/study", file=sys.stderr)
        report["check"] = {"bridge_set": await check_sample(hapi, bridge_set),
                           "baseline_set": await check_sample(hapi, base_set)}
        if former_set:
            report["check"]["former_set"] = await check_sample(hapi, former_set)
    report["settings"] = {"fhir.batch_size": args.batch_size, "sync.claim_batch":
                          args.claim_batch, "archive/fhir concurrency": args.concurrency,
                          "sync.workers (concurrent drains)": args.workers,
                          "sync.backfill_window_days": args.window_days,
                          "adaptive windows": not args.fixed_windows,
                          "sync.backfill_concurrency": args.scan_concurrency,
                          "scan/drain": "sequential" if args.sequential else "overlapped",
                          "state": "sqlite (temp dir)"}
    ratio = report["bridge"]["studies_per_s"] / max(1e-9, report["baseline"]["studies_per_s"])
    report["ratio"] = round(ratio, 2)
    report["target_ratio"] = TARGET_RATIO
    report["target_met"] = ratio >= TARGET_RATIO
    report["cpus"] = os.cpu_count()
    report["python"] = platform.python_version()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=1000, help="studies the bridge syncs")
    parser.add_argument("--baseline-studies", type=int, default=None,
                        help="studies the baseline syncs (default: --studies)")
    parser.add_argument("--profile", default="small", choices=["small", "mixed", "typical"])
    parser.add_argument("--stack", help="state file of running servers (devstack.py up)")
    parser.add_argument("--claim-batch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1,
                        help="concurrent drain loops in the process (as `serve` runs)")
    parser.add_argument("--window-days", type=int, default=SyncSettings().backfill_window_days,
                        help="the first QIDO window (every window with --fixed-windows)")
    parser.add_argument("--fixed-windows", action="store_true",
                        help="every window --window-days long (no adaptive sizing)")
    parser.add_argument("--scan-concurrency", type=int,
                        default=SyncSettings().backfill_concurrency,
                        help="window QIDOs in flight at once (1: the former way)")
    parser.add_argument("--sequential", action="store_true",
                        help="scan first, then drain (no overlap): the former way")
    parser.add_argument("--former-paths", action="store_true",
                        help="also sync a third set with issue 19's savings undone "
                             "(tests/bench/cpu_paths.py), before the bridge: before/after "
                             "CPU per study in one run")
    parser.add_argument("--former", action="append", choices=SAVINGS,
                        help="with --former-paths: undo only this saving (repeatable; "
                             "default: all of them)")
    parser.add_argument("--profile-bridge", action="store_true",
                        help="cProfile the bridge's phase (CPU of the event loop thread; "
                             "its figures then include the profiler's overhead) and print "
                             "the top")
    parser.add_argument("--json", default=str(ROOT / ".run" / "bench" / "backfill.json"))
    args = parser.parse_args(argv)
    report = asyncio.run(bench(args))
    b, n = report["bridge"], report["baseline"]
    print(f"baseline (DICOM Cast style): {n['studies_per_s']:8.2f} studies/s  "
          f"({n['studies']} studies, {n['failed']} failed, {n['wall_s']} s)")
    print(f"bridge:                      {b['studies_per_s']:8.2f} studies/s  "
          f"({b['studies']} studies, synced {b['synced']}, failed {b['failed']}, "
          f"{b['wall_s']} s of which scan {b['scan_wall_s']} s over "
          f"{b['archive_studies_scanned']} archive studies)")
    print(f"ratio {report['ratio']}x (target >= {TARGET_RATIO}x: "
          f"{'met' if report['target_met'] else 'MISSED'}); settings {report['settings']}")
    print(f"bridge CPU per study {b['bridge_cpu_ms_per_study']} ms (target <= {TARGET_CPU_MS}: "
          f"{'met' if b['cpu_target_met'] else 'MISSED'}); servers' CPU per study "
          f"{b['server_cpu_ms_per_study']} ms; servers-only ceiling "
          f"{b['servers_only_ceiling_studies_per_s']} studies/s, reached {b['of_ceiling']} "
          f"(target >= {TARGET_OF_CEILING})")
    if "bridge_former_paths" in report:
        f = report["bridge_former_paths"]
        print(f"former code paths (same run): bridge CPU per study "
              f"{f['bridge_cpu_ms_per_study']} ms, {f['studies_per_s']} studies/s, "
              f"servers {f['server_cpu_ms_per_study']} ms/study")
    print(f"bridge time: own CPU {b['bridge_cpu_s']} s, servers' CPU {b['server_cpu_s']}, "
          f"archive {b['archive_http']}, fhir {b['fhir_http']}")
    print(f"load average: start {report['load_average_start']}, after "
          f"{report['load_average_after_bridge']}; sample check {report['check']}")
    for line in report.get("bridge_profile_top_tottime", []):
        print(line)
    path = write_report(report, args.json)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
