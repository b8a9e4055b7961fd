"""STOW-to-searchable latency while a backfill drains, against real Orthanc and HAPI (issue 19).

    .venv/bin/python tests/bench/bench_latency_under_load.py --stack .run/stack.json
    .venv/bin/python tests/bench/bench_latency_under_load.py --quick      # 300 studies, smoke run
    .venv/bin/python tests/bench/bench_latency_under_load.py --studies 5000 --interval 0.5

Issue 19, "Proof": p50/p95 STOW-to-searchable while a backfill of >= 5,000 studies drains
(target p95 <= 1 s), the same latency idle for comparison, and backfill throughput with and
without real-time traffic, all in one run.

Servers: the HAPI FHIR of the stack (``--stack``; without one a HAPI is started here), and,
started here and stopped at the end, two throwaway Orthancs and a PostgreSQL (the state
store: two bridge processes share it, as in production):

* ``main``: the STOW proxy's archive; holds the backfill set measured *with* real-time traffic;
* ``side``: holds the set backfilled *without* traffic (same size), so neither backfill scans
  the other's studies.

Each set is ``--studies`` generated studies (``samples.generator``, profile ``small``, only the
first instance of each: one instance per study), stored through Orthanc's REST ``/instances``
(a few uploads in flight) and their Patients and ServiceRequests seeded in HAPI
(``samples.seed_ehr``): the default mapping's patient policy needs the Patient in the EHR.
None of this is timed.

The bridge runs as in production: ``imaging-bridge serve`` (STOW proxy, ``sync.workers``
drain loops) for the whole run, and ``imaging-bridge backfill --archive NAME`` as a second
process on the same state store; both drain the queue, real-time work first (lanes).

Phases, one after the other:

1. **idle**: ``--idle`` studies STOWed through the proxy, one every ``--interval`` s, nothing
   else queued;
2. **backfill without traffic**: ``backfill --archive side``;
3. **backfill with traffic**: ``backfill --archive main`` while a study is STOWed through the
   proxy every ``--interval`` s until the backfill process ends.

A real-time study is 3 series x 2 instances in one STOW request (as ``bench_latency.py``).
Latency: from the STOW response to the first ``ImagingStudy?identifier=`` search (no-cache,
every 50 ms, ``bench_latency.Watcher``) that holds it.  "while draining" keeps the studies
STOWed while the bulk lane of ``main`` still held work (state store sampled every 0.25 s).
Throughput: studies of the set / seconds from the backfill's launch until its bulk lane was
empty (``drain_s``); the process's wall time (start-up and settling included) next to it.
The machine's load average and CPU busy share are recorded per phase: the machine has two
cores and is shared, so read every figure next to them.

Writes ``.run/bench/latency_under_load.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (HERE, REPO / "docker" / "local", REPO):
    sys.path.insert(0, str(p))

import devstack  # noqa: E402
import httpx  # noqa: E402
from bench_latency import Watcher, ctype, multipart, study_datasets, summary  # noqa: E402

from bridge.state import Lane, StateStore, open_store  # noqa: E402
from samples.generator import GeneratedStudy, generate_studies, write_part10  # noqa: E402
from samples.seed_ehr import seed_ehr  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402

TARGET_P95_S = 1.0
TOKEN = "bench-stow-" + uuid.uuid4().hex
BRIDGE = str(REPO / ".venv" / "bin" / "imaging-bridge")


class Interrupted(Exception):
    pass


def _on_term(_signum: int, _frame: Any) -> None:
    raise Interrupted("SIGTERM")


# --- the machine ----------------------------------------------------------------------------


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def proc_cpu(pid: int | None) -> float | None:
    """User+system CPU seconds of a process, or None."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int | None) -> float | None:
    """CPU seconds of a process and its live descendants (PostgreSQL's backends, a
    launcher's JVM), or None when it is gone."""
    if not pid or proc_cpu(pid) is None:
        return None
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += proc_cpu(p) or 0.0
        todo += children.get(p, [])
    return total


class Phase:
    """Load average and CPU of the machine and of each server over one phase."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.cpu0 = cpu_times()
        self.procs0 = {k: tree_cpu(p) for k, p in pids.items()}
        self.load_start = [round(x, 2) for x in os.getloadavg()]
        self.loads: list[float] = []

    def sample(self) -> None:
        self.loads.append(os.getloadavg()[0])

    def end(self, extra: dict[str, float] | None = None) -> dict[str, Any]:
        busy1, total1 = cpu_times()
        busy = (busy1 - self.cpu0[0]) / max(1.0, total1 - self.cpu0[1])
        procs: dict[str, float | None] = {}
        for k, before in self.procs0.items():
            after = tree_cpu(self.pids[k])
            procs[k] = None if before is None or after is None else round(after - before, 1)
        procs.update(extra or {})
        return {"seconds": round(time.monotonic() - self.started, 1),
                "load_average_start": self.load_start,
                "load_average_end": [round(x, 2) for x in os.getloadavg()],
                "load1_max": round(max(self.loads), 2) if self.loads else None,
                "machine_cpu_busy": round(busy, 3),
                "process_cpu_s": procs}


# --- loading ----------------------------------------------------------------------------------


def load_one_instance_each(studies: list[GeneratedStudy], orthanc: Any, *, parallel: int = 4
                           ) -> dict[str, Any]:
    """Store each study's first instance through Orthanc's REST ``/instances``."""
    started = time.monotonic()
    failures: list[str] = []
    with httpx.Client(auth=orthanc.auth, timeout=120,
                      limits=httpx.Limits(max_connections=parallel)) as client:

        def store(study: GeneratedStudy) -> None:
            body = write_part10(next(study.instances()))
            resp = client.post(f"{orthanc.base_url}/instances", content=body,
                               headers={"Content-Type": "application/dicom"})
            if resp.status_code != 200:
                failures.append(f"{study.study_uid}: {resp.status_code} {resp.text[:200]}")

        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(store, studies))
    if failures:
        raise RuntimeError(f"Orthanc refused {len(failures)} instances: {failures[:3]}")
    return {"studies": len(studies), "seconds": round(time.monotonic() - started, 1)}


def seed(studies: list[GeneratedStudy], fhir_url: str, seed_: int) -> dict[str, Any]:
    result = seed_ehr([s.truth for s in studies], fhir_url=fhir_url, seed=seed_)
    if not result.ok:
        raise RuntimeError(f"seeding HAPI failed: {result.summary()}")
    return {"studies": len(studies), "seconds": round(result.seconds, 1)}


# --- the state store, sampled -------------------------------------------------------------------


class LaneSampler(threading.Thread):
    """Every ``period`` s: each archive's lane depths (due, waiting or leased) and the load."""

    def __init__(self, store: StateStore, archives: list[str], period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.archives = archives
        self.period = period
        self.latest: dict[str, dict[str, int]] = {}
        self.timeline: list[tuple[float, str, int, int]] = []  # (t, archive, realtime, bulk)
        self.phase: Phase | None = None
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.monotonic()
            for name in self.archives:
                try:
                    depth = {f.lane.value: f.depth for f in self.store.lanes(name)}
                except Exception:  # a sample lost is not a reason to stop the bench
                    continue
                with self.lock:
                    self.latest[name] = depth
                    self.timeline.append((now, name, depth.get(Lane.REALTIME.value, 0),
                                          depth.get(Lane.BULK.value, 0)))
            if self.phase is not None:
                self.phase.sample()
            self.stop.wait(self.period)

    def bulk(self, archive: str) -> int:
        with self.lock:
            return self.latest.get(archive, {}).get(Lane.BULK.value, 0)

    def drained_at(self, archive: str, since: float) -> float | None:
        """First sample after ``since`` where the archive's bulk lane is empty, after it held
        work; None if it never held work or never emptied."""
        held = False
        with self.lock:
            rows = [(t, b) for t, a, _, b in self.timeline if a == archive and t >= since]
        for t, bulk in rows:
            if bulk > 0:
                held = True
            elif held:
                return t
        return None

    def peak_bulk(self, archive: str, since: float) -> int:
        with self.lock:
            return max((b for t, a, _, b in self.timeline if a == archive and t >= since),
                       default=0)


# --- real-time traffic -------------------------------------------------------------------------


class Traffic(threading.Thread):
    """STOWs one study every ``interval`` s through the proxy until ``count`` are sent or
    ``stop`` is set; records when each answer came and the bulk lane's depth then."""

    def __init__(self, studies: Iterator[GeneratedStudy], *, url: str, watcher: Watcher,
                 sampler: LaneSampler, interval: float, count: int | None) -> None:
        super().__init__(daemon=True)
        self.studies = studies
        self.url = url
        self.watcher = watcher
        self.sampler = sampler
        self.interval = interval
        self.count = count
        self.sent: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                while not self.stop.is_set() and (self.count is None
                                                  or len(self.sent) < self.count):
                    study = next(self.studies, None)
                    if study is None:
                        self.error = "ran out of pre-seeded real-time studies"
                        return
                    datasets = study_datasets(study)
                    boundary = uuid.uuid4().hex
                    body = multipart([write_part10(ds) for ds in datasets], boundary)
                    self.watcher.watch(study.study_uid, len(datasets))
                    t0 = time.monotonic()
                    bulk = self.sampler.bulk("main")
                    resp = c.post(self.url, content=body, headers={
                        "Content-Type": ctype(boundary), "Accept": "application/dicom+json"})
                    t1 = time.monotonic()
                    if resp.status_code != 200:
                        self.error = f"STOW answered {resp.status_code}: {resp.text[:300]}"
                        return
                    self.sent.append({"uid": study.study_uid, "sent": t0, "answered": t1,
                                      "stow_s": t1 - t0, "bulk_depth": bulk})
                    self.stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))
        except Exception as exc:  # reported, and the phase's figures say how many were sent
            self.error = f"{type(exc).__name__}: {exc}"


def latencies(traffic: Traffic, watcher: Watcher, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(s["uid"] in watcher.seen
                                                  for s in traffic.sent):
        time.sleep(0.1)

    def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
        visible = [watcher.seen[r["uid"]] - r["answered"] for r in rows if r["uid"] in watcher.seen]
        return {"visible_s": summary(visible),
                "within_target": sum(v <= TARGET_P95_S for v in visible),
                "never_visible": len(rows) - len(visible)}

    out: dict[str, Any] = {"sent": len(traffic.sent),
                           "stow_response_s": summary([r["stow_s"] for r in traffic.sent]),
                           "all": figures(traffic.sent), "error": traffic.error}
    draining = [r for r in traffic.sent if r["bulk_depth"] > 0]
    if any(r["bulk_depth"] for r in traffic.sent):
        out["while_draining"] = figures(draining)
        out["while_draining"]["bulk_depth_at_send"] = summary(
            [float(r["bulk_depth"]) for r in draining])
    return out


# --- the bridge --------------------------------------------------------------------------------


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"bridge did not start; see {log}")
        time.sleep(0.2)


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def reap(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int | None, float]:
    """Wait for ``proc`` to end (at most ``timeout`` s): its exit code (None if it did not
    end) and the CPU seconds it used (``wait4``'s rusage: /proc has nothing once it ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        time.sleep(0.1)
    return None, 0.0


def run_backfill(archive: str, cfg: Path, work: Path, sampler: LaneSampler, size: int,
                 pids: dict[str, int | None], timeout: float, *, during: Traffic | None = None
                 ) -> dict[str, Any]:
    log = work / f"backfill-{archive}.log"
    phase = Phase(pids)
    sampler.phase = phase
    launched = time.monotonic()
    proc = subprocess.Popen([BRIDGE, "backfill", "-c", str(cfg), "--archive", archive,
                             "--settle", "10"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    try:
        if during is not None:
            during.start()
        code, cpu = reap(proc, timeout)
        ended = time.monotonic()
        if code is None:
            raise RuntimeError(f"backfill of {archive} took over {timeout} s; see {log}")
    finally:
        if during is not None:
            during.stop.set()
            during.join(130)
        stop_process(proc)
    time.sleep(2 * sampler.period)  # the last sample after the drain
    sampler.phase = None
    drained = sampler.drained_at(archive, launched)
    counts = sampler.store.counts(archive)
    drain_s = (drained - launched) if drained is not None else (ended - launched)
    out = {"archive": archive, "studies": size, "exit_code": code,
           "wall_s": round(ended - launched, 1), "drain_s": round(drain_s, 1),
           "drain_end_from": "bulk lane empty" if drained is not None else "process exit",
           "studies_per_s": round(size / drain_s, 1),
           "peak_bulk_depth": sampler.peak_bulk(archive, launched),
           "state_counts": counts, "machine": phase.end({"bridge_backfill": round(cpu, 1)}),
           "log": str(log)}
    if code != 0:
        out["log_tail"] = log.read_text(errors="replace")[-1500:]
    return out


def check_sample(fhir_url: str, studies: list[GeneratedStudy], k: int = 25) -> dict[str, int]:
    """How many ImagingStudy resources each of a sample of the set has (1 expected)."""
    counts: dict[str, int] = {}
    with httpx.Client(timeout=60) as client:
        for s in studies[:: max(1, len(studies) // k)]:
            total = client.get(f"{fhir_url}/ImagingStudy", params={
                "identifier": f"urn:dicom:uid|urn:oid:{s.study_uid}", "_summary": "count"},
                headers={"Cache-Control": "no-cache"}).json().get("total")
            counts[f"{total} match"] = counts.get(f"{total} match", 0) + 1
    return counts


# --- the run -----------------------------------------------------------------------------------


@contextlib.contextmanager
def hapi_server(stack_path: Path | None) -> Iterator[tuple[Any, int | None]]:
    if stack_path and stack_path.exists():
        raw = json.loads(stack_path.read_text())
        yield devstack.load_state(stack_path)["hapi"], raw.get("hapi", {}).get("pid")
        return
    hapi = devstack.Hapi(os.environ.get("BRIDGE_HAPI_JAR")
                         or devstack.build_hapi_jar(REPO)).start()
    try:
        yield hapi.endpoint(), hapi.pid
    finally:
        hapi.stop()


def bench(args: argparse.Namespace) -> dict[str, Any]:
    token = uuid.uuid4().hex[:5].upper()
    seed_ = int(token, 16)
    report: dict[str, Any] = {
        "bench": "latency_under_load", "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "token": token, "studies_per_backfill": args.studies, "interval_s": args.interval,
        "idle_studies": args.idle, "target_p95_s": TARGET_P95_S, "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "settings": {"sync.workers (serve)": args.workers,
                     "sync.realtime_workers (serve)": args.realtime_workers,
                     "sync.claim_batch": args.claim_batch,
                     "sync.bulk_share": args.bulk_share, "state": "postgresql (own)",
                     "backfill": "imaging-bridge backfill --archive NAME (second process)",
                     "realtime study": "3 series x 2 instances, one STOW via the proxy",
                     "backfill study": "profile small, first instance only (1 instance)",
                     "patients": "seeded in HAPI (samples.seed_ehr), default mapping policy"}}
    work = Path(tempfile.mkdtemp(prefix="bench-latency-load-"))
    report["workdir"] = str(work)
    started: list[Any] = []
    serve: subprocess.Popen[bytes] | None = None
    store: StateStore | None = None
    sampler: LaneSampler | None = None
    watcher: Watcher | None = None
    with hapi_server(args.stack) as (hapi, hapi_pid):
        try:
            print("starting two Orthancs and PostgreSQL ...", file=sys.stderr, flush=True)
            main_o = devstack.Orthanc().start()
            started.append(main_o)
            side_o = devstack.Orthanc().start()
            started.append(side_o)
            pg = devstack.Postgres().start()
            started.append(pg)
            pids = {"orthanc_main": main_o.pid, "orthanc_side": side_o.pid, "postgres": pg.pid,
                    "hapi": hapi_pid}

            # the sets: the one backfilled with traffic (main), without (side), real-time
            with_set = list(generate_studies(args.studies, seed=seed_, profile="small",
                                             id_prefix=f"W{token}"))
            plain_set = list(generate_studies(args.studies, seed=seed_ + 1, profile="small",
                                              id_prefix=f"P{token}"))
            rt_set = list(generate_studies(args.idle + args.max_realtime, seed=seed_ + 2,
                                           profile="small", id_prefix=f"R{token}"))
            print(f"loading 2 x {args.studies} one-instance studies into Orthanc, seeding "
                  f"HAPI for them and {len(rt_set)} real-time studies ...", file=sys.stderr,
                  flush=True)
            report["prepare"] = {
                "orthanc_main": load_one_instance_each(with_set, main_o),
                "orthanc_side": load_one_instance_each(plain_set, side_o),
                "hapi_with_set": seed(with_set, hapi.fhir_url, seed_),
                "hapi_plain_set": seed(plain_set, hapi.fhir_url, seed_ + 1),
                "hapi_realtime_set": seed(rt_set, hapi.fhir_url, seed_ + 2)}

            port = devstack.free_port()
            config = {
                "archives": [{"name": n, "base_url": o.dicomweb_url,
                              "auth": {"kind": "basic", "username": o.username,
                                       "password": o.password}}
                             for n, o in (("main", main_o), ("side", side_o))],
                "fhir": {"base_url": hapi.fhir_url},
                "state": {"url": pg.url},
                "sync": {"poll_interval": 3600, "workers": args.workers,
                         "realtime_workers": args.realtime_workers,
                         "claim_batch": args.claim_batch, "bulk_share": args.bulk_share},
                "api": {"port": port},
                "log": {"level": args.log_level, "json_output": args.log_level == "INFO"},
                "realtime": {"stow_archive": "main", "stow_auth": {"bearer_tokens": [TOKEN]},
                             "reconcile_interval": 0},
            }
            cfg = work / "bridge.yaml"
            cfg.write_text(json.dumps(config))
            serve_log = work / "serve.log"
            serve = subprocess.Popen([BRIDGE, "serve", "-c", str(cfg)],
                                     stdout=open(serve_log, "wb"),  # noqa: SIM115
                                     stderr=subprocess.STDOUT)
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, serve, serve_log)
            pids["bridge_serve"] = serve.pid
            store = open_store(pg.url)
            sampler = LaneSampler(store, ["main", "side"])
            sampler.start()
            watcher = Watcher(hapi.fhir_url)
            watcher.start()
            rt = iter(rt_set)
            proxy = f"{base}/dicom-web/studies"

            print(f"idle: {args.idle} studies through the proxy, one every {args.interval} s"
                  " ...", file=sys.stderr, flush=True)
            phase = Phase(pids)
            sampler.phase = phase
            idle = Traffic(rt, url=proxy, watcher=watcher, sampler=sampler,
                           interval=args.interval, count=args.idle)
            idle.start()
            idle.join()
            report["idle"] = latencies(idle, watcher, timeout=60)
            sampler.phase = None
            report["idle"]["machine"] = phase.end()

            print(f"backfill without traffic: {args.studies} studies (archive side) ...",
                  file=sys.stderr, flush=True)
            report["backfill_without_traffic"] = run_backfill(
                "side", cfg, work, sampler, args.studies, pids, args.timeout)

            print(f"backfill with traffic: {args.studies} studies (archive main), a STOW every "
                  f"{args.interval} s ...", file=sys.stderr, flush=True)
            loaded = Traffic(rt, url=proxy, watcher=watcher, sampler=sampler,
                             interval=args.interval, count=None)
            report["backfill_with_traffic"] = run_backfill(
                "main", cfg, work, sampler, args.studies, pids, args.timeout, during=loaded)
            report["loaded"] = latencies(loaded, watcher, timeout=60)

            report["check"] = {"with_set": check_sample(hapi.fhir_url, with_set),
                               "plain_set": check_sample(hapi.fhir_url, plain_set)}
            report["serve_cpu_s"] = proc_cpu(serve.pid)
        finally:
            if watcher is not None:
                watcher.stop.set()
            if sampler is not None:
                sampler.stop.set()
                sampler.join(5)
            stop_process(serve)
            if store is not None:
                store.close()
            for server in reversed(started):
                with contextlib.suppress(Exception):
                    server.stop()
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    if not args.keep_workdir:  # reached only when every phase ran: logs of a failure stay
        shutil.rmtree(work, ignore_errors=True)
        report["workdir"] = None
    return report


def print_report(r: dict[str, Any]) -> None:
    def lat(name: str, block: dict[str, Any]) -> None:
        v = block["visible_s"]
        print(f"{name:34s} n {v.get('n', 0):4d}  p50 {v.get('p50')} s  p95 {v.get('p95')} s  "
              f"max {v.get('max')} s  (<= {TARGET_P95_S} s: {block['within_target']}, "
              f"never visible {block['never_visible']})")

    print("serve: " + ", ".join(f"{k} {v}" for k, v in r["settings"].items()
                                if k.startswith("sync.")))
    print(f"STOW-to-searchable (proxy, 3 series x 2 instances, one every {r['interval_s']} s):")
    lat("  idle", r["idle"]["all"])
    lat("  during the backfill (all)", r["loaded"]["all"])
    if "while_draining" in r["loaded"]:
        lat("  while the bulk lane held work", r["loaded"]["while_draining"])
    p95 = r["loaded"].get("while_draining", r["loaded"]["all"])["visible_s"].get("p95")
    met = p95 is not None and p95 <= TARGET_P95_S
    print(f"  target p95 <= {TARGET_P95_S} s under load: {'met' if met else 'MISSED'}")
    for key, label in (("backfill_without_traffic", "without real-time traffic"),
                       ("backfill_with_traffic", "with real-time traffic")):
        b = r[key]
        m = b["machine"]
        print(f"backfill {label:26s} {b['studies_per_s']:6.1f} studies/s  ({b['studies']} in "
              f"{b['drain_s']} s to an empty bulk lane, process {b['wall_s']} s, exit "
              f"{b['exit_code']}); load {m['load_average_start']} -> {m['load_average_end']}, "
              f"machine CPU busy {m['machine_cpu_busy']:.0%}")
    i = r["idle"]["machine"]
    print(f"idle phase: load {i['load_average_start']} -> {i['load_average_end']}, machine CPU "
          f"busy {i['machine_cpu_busy']:.0%}; sample check {r['check']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=5000,
                        help="studies in each backfill set (two sets)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 300 studies per set, 20 idle STOWs")
    parser.add_argument("--idle", type=int, default=60, help="STOWs of the idle phase")
    parser.add_argument("--interval", type=float, default=0.5,
                        help="seconds between real-time STOWs (default 0.5: 2 studies/s)")
    parser.add_argument("--max-realtime", type=int, default=1500,
                        help="real-time studies generated and seeded for the loaded phase")
    parser.add_argument("--workers", type=int, default=2, help="serve's sync.workers")
    parser.add_argument("--realtime-workers", type=int, default=2,
                        help="serve's sync.realtime_workers (loops claiming only real-time work)")
    parser.add_argument("--claim-batch", type=int, default=50, help="sync.claim_batch")
    parser.add_argument("--bulk-share", type=float, default=0.2, help="sync.bulk_share")
    parser.add_argument("--log-level", choices=("WARNING", "INFO"), default="WARNING",
                        help="the bridge processes' log level; INFO writes a JSON line per "
                        "synced study (its seconds from claim to record) to the workdir's logs")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds one backfill may take before the bench gives up")
    parser.add_argument("--stack", type=Path, default=REPO / ".run" / "stack.json",
                        help="state file whose HAPI to use (absent: start one here)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep the bridge's config and logs (kept anyway after a failure)")
    parser.add_argument("--json", type=Path,
                        default=REPO / ".run" / "bench" / "latency_under_load.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.studies, args.idle = min(args.studies, 300), min(args.idle, 20)
        args.max_realtime = min(args.max_realtime, 300)
    signal.signal(signal.SIGTERM, _on_term)
    report = bench(args)
    print_report(report)
    write_report(report, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
