"""Latency and throughput of the real-time paths (issue 5, "Proof"), against real servers.

Run:  BRIDGE_TEST_STACK=.run/stack.json .venv/bin/python tests/bench/bench_latency.py

Uses the HAPI FHIR server of the running stack and starts two throwaway Orthancs: ``A`` the
STOW proxy's archive, ``B`` with ``docker/orthanc/notifier.lua`` posting to the bridge.  The
bridge runs as its own process (``imaging-bridge serve``), as in production.

Measured:

* latency, 50 studies x 3 series (2 instances each), one STOW each, one every
  ``--interval`` s: (a) through the proxy to A, (b) straight to B's STOW-RS + notifier.
  From the STOW response to the first ``ImagingStudy?identifier=`` answer that holds the
  study (searched with ``Cache-Control: no-cache`` every 50 ms, all pending studies in one
  search); also until its instance count is final;
* upload throughput of the proxy against direct STOW to A (same body, alternated);
* the bridge process's peak RSS (``VmHWM``) while 1 GiB streams through the proxy; the body
  is generated on the fly (1024 x 1 MiB instances), never written to disk.

Figures are printed and written to ``.run/bench/latency.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for p in (REPO / "docker" / "local", REPO):
    sys.path.insert(0, str(p))

import devstack  # noqa: E402
import httpx  # noqa: E402
from pydicom import Dataset  # noqa: E402
from pydicom.uid import UID  # noqa: E402

from samples.generator import GeneratedStudy, generate_studies, write_part10  # noqa: E402
from samples.seed_ehr import seed_ehr  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.settings import archive_entry, bridge_config, save_config, sqlite_url  # noqa: E402
from tests.support.waits import wait_until  # noqa: E402

SECRET = "bench-webhook-" + uuid.uuid4().hex
TOKEN = "bench-stow-" + uuid.uuid4().hex
MIB = 1 << 20


def _uid() -> UID:
    return UID(f"2.25.{uuid.uuid4().int}")


def study_datasets(study: GeneratedStudy, *, series: int = 3, per_series: int = 2
                   ) -> list[Dataset]:
    template = next(study.instances())
    out = []
    for s in range(series):
        series_uid = _uid()
        for i in range(per_series):
            ds = copy.deepcopy(template)
            ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, _uid()
            ds.SeriesNumber, ds.InstanceNumber = s + 1, i + 1
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out.append(ds)
    return out


def multipart(parts: list[bytes], boundary: str) -> bytes:
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), part,
                   b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def ctype(boundary: str) -> str:
    return f'multipart/related; type="application/dicom"; boundary={boundary}'


class BigBody:
    """A STOW body of ``count`` 1 MiB instances of one new study, generated part by part."""

    def __init__(self, study: GeneratedStudy, count: int) -> None:
        template = copy.deepcopy(next(study.instances()))
        template.StudyInstanceUID = _uid()
        template.SeriesInstanceUID = _uid()
        template.Rows, template.Columns = 512, 1024
        template.BitsAllocated, template.BitsStored, template.HighBit = 16, 16, 15
        template.SamplesPerPixel, template.PixelRepresentation = 1, 0
        template.PhotometricInterpretation = "MONOCHROME2"
        template.PixelData = bytes(range(256)) * (MIB // 256)
        self.template = template
        self.count = count
        self.boundary = f"big-{uuid.uuid4().hex}"
        self.study_uid = str(template.StudyInstanceUID)
        self._head = f"--{self.boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        self._part_len = len(self._part(1))
        self.length = count * (len(self._head) + self._part_len + 2) + len(self._tail())

    def _part(self, n: int) -> bytes:
        ds = self.template
        # fixed-width values, so every part has the same size and Content-Length is exact
        ds.SOPInstanceUID = UID(f"{self.study_uid}.{1_000_000 + n}")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = 100_000 + n
        return write_part10(ds)

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    def chunks(self) -> Iterator[bytes]:
        for n in range(1, self.count + 1):
            part = self._part(n)
            if len(part) != self._part_len:  # keep Content-Length exact
                raise RuntimeError("instance sizes differ")
            yield self._head
            yield part
            yield b"\r\n"
        yield self._tail()


class Watcher(threading.Thread):
    """Searches HAPI for every pending study every 50 ms; records first sight and final count."""

    def __init__(self, fhir_url: str) -> None:
        super().__init__(daemon=True)
        self.fhir_url = fhir_url
        self.expected: dict[str, int] = {}
        self.seen: dict[str, float] = {}
        self.final: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def watch(self, uid: str, instances: int) -> None:
        with self.lock:
            self.expected[uid] = instances

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                with self.lock:
                    pending = [u for u in self.expected if u not in self.final]
                for i in range(0, len(pending), 40):
                    batch = pending[i:i + 40]
                    resp = client.get(f"{self.fhir_url}/ImagingStudy", params={
                        "identifier": ",".join(f"urn:dicom:uid|urn:oid:{u}" for u in batch),
                        "_elements": "identifier,numberOfInstances", "_count": "100"},
                        headers={"Cache-Control": "no-cache"})
                    now = time.monotonic()
                    for entry in resp.json().get("entry", []):
                        res = entry["resource"]
                        uid = next(x["value"][8:] for x in res["identifier"]
                                   if x.get("system") == "urn:dicom:uid")
                        self.seen.setdefault(uid, now)
                        if res.get("numberOfInstances") == self.expected.get(uid):
                            self.final.setdefault(uid, now)
                time.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(pct(values, 50), 3), "p95": round(pct(values, 95), 3),
            "max": round(max(values), 3), "mean": round(statistics.fmean(values), 3)}


def latency_run(name: str, studies: list[GeneratedStudy], url: str, headers: dict[str, str],
                watcher: Watcher, interval: float, timeout: float,
                auth: tuple[str, str] | None = None) -> dict[str, Any]:
    ends: dict[str, float] = {}
    with httpx.Client(timeout=120, headers=headers, auth=auth) as client:
        for study in studies:
            datasets = study_datasets(study)
            boundary = uuid.uuid4().hex
            body = multipart([write_part10(ds) for ds in datasets], boundary)
            watcher.watch(study.study_uid, len(datasets))
            t0 = time.monotonic()
            resp = client.post(url, content=body, headers={"Content-Type": ctype(boundary),
                                                           "Accept": "application/dicom+json"})
            ends[study.study_uid] = time.monotonic()
            if resp.status_code != 200:
                raise RuntimeError(f"{name}: STOW answered {resp.status_code}: {resp.text[:300]}")
            time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(u in watcher.final for u in ends):
        time.sleep(0.1)
    visible = [watcher.seen[u] - t for u, t in ends.items() if u in watcher.seen]
    final = [watcher.final[u] - t for u, t in ends.items() if u in watcher.final]
    return {"studies": len(ends), "visible_s": summary(visible), "final_counts_s": summary(final),
            "never_visible": len(ends) - len(visible)}


def throughput(body: bytes, boundary: str, *, direct: str, direct_auth: tuple[str, str],
               proxy: str, reps: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"direct": [], "proxy": []}
    for _ in range(reps):
        for kind in ("direct", "proxy"):
            kwargs: dict[str, Any] = {"auth": direct_auth} if kind == "direct" else {
                "headers": {"Authorization": f"Bearer {TOKEN}"}}
            with httpx.Client(timeout=600, **kwargs) as client:
                t0 = time.monotonic()
                resp = client.post(direct if kind == "direct" else proxy, content=body,
                                   headers={"Content-Type": ctype(boundary)})
                dt = time.monotonic() - t0
            if resp.status_code != 200:
                raise RuntimeError(f"{kind} STOW answered {resp.status_code}: {resp.text[:300]}")
            rates[kind].append(len(body) / MIB / dt)
    best = {k: round(max(v), 1) for k, v in rates.items()}
    median = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    return {"body_mib": round(len(body) / MIB, 1), "mib_per_s": rates, "best_mib_per_s": best,
            "median_mib_per_s": median,
            "ratio_proxy_to_direct": round(best["proxy"] / best["direct"], 3),
            "ratio_of_medians": round(median["proxy"] / median["direct"], 3)}


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss_1gib(big: BigBody, proxy: str, pid: int) -> dict[str, Any]:
    before_hwm, before_rss = vm_hwm_kib(pid), vm_rss_kib(pid)
    peak = [before_rss]
    done = threading.Event()

    def sample() -> None:  # VmHWM is the kernel's own peak; sampling RSS double-checks it
        while not done.is_set():
            peak[0] = max(peak[0], vm_rss_kib(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    with httpx.Client(timeout=1800) as client:
        resp = client.post(proxy, content=big.chunks(), headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": ctype(big.boundary),
            "Content-Length": str(big.length)})
    dt = time.monotonic() - t0
    done.set()
    sampler.join()
    after_hwm = vm_hwm_kib(pid)
    return {"body_mib": round(big.length / MIB, 1), "status": resp.status_code,
            "seconds": round(dt, 1), "mib_per_s": round(big.length / MIB / dt, 1),
            "rss_before_mib": round(before_rss / 1024, 1),
            "peak_rss_mib": round(max(after_hwm, peak[0]) / 1024, 1),
            "peak_growth_mib": round((max(after_hwm, peak[0]) - max(before_hwm, before_rss))
                                     / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.2,
                        help="seconds between study uploads (default 0.2: 5 studies/s)")
    parser.add_argument("--throughput-mib", type=int, default=128)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=REPO / ".run" / "bench" / "latency.json")
    args = parser.parse_args()

    stack = devstack.load_state(os.environ.get("BRIDGE_TEST_STACK", REPO / ".run/stack.json"))
    hapi = stack["hapi"]
    token = uuid.uuid4().hex[:6].upper()
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    orthanc_a = devstack.Orthanc().start()
    orthanc_b = devstack.Orthanc(
        notify_lua_script=REPO / "docker/orthanc/notifier.lua",
        extra_config={"ImagingBridge": {"Url": f"http://127.0.0.1:{port}/notifications",
                                        "Secret": SECRET, "Archive": "notified"}}).start()
    bridge: subprocess.Popen[bytes] | None = None
    try:
        archives = [archive_entry(o, n)
                    for n, o in (("proxied", orthanc_a), ("notified", orthanc_b))]
        config = bridge_config(
            archives=archives, fhir_url=hapi.fhir_url, state_url=sqlite_url(work),
            sync={"poll_interval": 3600, "workers": 2},
            api={"port": port}, log={"level": "WARNING"},
            realtime={"webhook_secret": SECRET, "stow_archive": "proxied",
                      "stow_auth": {"bearer_tokens": [TOKEN]}, "reconcile_interval": 0})
        save_config(work / "bridge.yaml", config)
        bridge = subprocess.Popen(
            [str(REPO / ".venv/bin/imaging-bridge"), "serve", "-c", str(work / "bridge.yaml")],
            stdout=open(work / "bridge.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
        base = f"http://127.0.0.1:{port}"
        def healthy() -> bool:
            assert bridge is not None and bridge.poll() is None, \
                f"bridge exited; see {work / 'bridge.log'}"
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=60, every=0.2,
                   what=f"the bridge (see {work / 'bridge.log'})")

        studies = list(generate_studies(2 * args.studies + 1, seed=int(token, 16),
                                        profile="small", id_prefix=token))
        seed_ehr([s.truth for s in studies], fhir_url=hapi.fhir_url, seed=1)
        watcher = Watcher(hapi.fhir_url)
        watcher.start()
        results: dict[str, Any] = {"studies_per_run": args.studies,
                                   "series_per_study": 3, "instances_per_series": 2,
                                   "upload_interval_s": args.interval, "cpus": os.cpu_count()}
        print(f"proxy latency: {args.studies} studies ...", flush=True)
        results["proxy"] = latency_run(
            "proxy", studies[:args.studies], f"{base}/dicom-web/studies",
            {"Authorization": f"Bearer {TOKEN}"}, watcher, args.interval, 60)
        print(f"notifier latency: {args.studies} studies ...", flush=True)
        results["notifier"] = latency_run(
            "notifier", studies[args.studies:2 * args.studies],
            f"{orthanc_b.dicomweb_url}/studies", {}, watcher, args.interval, 60,
            auth=orthanc_b.auth)
        watcher.stop.set()

        print(f"throughput: {args.throughput_mib} MiB, direct vs proxy ...", flush=True)
        tp = BigBody(studies[-1], args.throughput_mib)
        body = b"".join(tp.chunks())
        results["throughput"] = throughput(
            body, tp.boundary, direct=f"{orthanc_a.dicomweb_url}/studies",
            direct_auth=orthanc_a.auth, proxy=f"{base}/dicom-web/studies", reps=3)
        del body
        print(f"peak memory: {args.big_mib} MiB streamed through the proxy ...", flush=True)
        results["upload_1gib"] = rss_1gib(BigBody(studies[-1], args.big_mib),
                                          f"{base}/dicom-web/studies", bridge.pid)
    finally:
        if bridge is not None:
            bridge.terminate()
            bridge.wait(30)
        orthanc_a.stop()
        orthanc_b.stop()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    for run in ("proxy", "notifier"):
        r = results[run]
        v, f = r["visible_s"], r["final_counts_s"]
        print(f"{run:9s} visible  p50 {v.get('p50')} s  p95 {v.get('p95')} s  max {v.get('max')} s"
              f"   | final counts p50 {f.get('p50')} s  p95 {f.get('p95')} s  max {f.get('max')} s"
              f"   | never visible {r['never_visible']}")
    t = results["throughput"]
    print(f"throughput ({t['body_mib']} MiB, best of 3): direct {t['best_mib_per_s']['direct']} "
          f"MiB/s, proxy {t['best_mib_per_s']['proxy']} MiB/s, ratio "
          f"{t['ratio_proxy_to_direct']} (ratio of medians {t['ratio_of_medians']})")
    u = results["upload_1gib"]
    print(f"{args.big_mib} MiB via proxy: HTTP {u['status']} in {u['seconds']} s "
          f"({u['mib_per_s']} MiB/s), "
          f"bridge RSS {u['rss_before_mib']} -> peak {u['peak_rss_mib']} MiB "
          f"(+{u['peak_growth_mib']} MiB)")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
