"""Benchmark of the DICOMweb gateway (issue 8): prints figures and writes JSON.

    BRIDGE_TEST_STACK=.run/stack.json .venv/bin/python tests/bench/bench_gateway.py
    ... --instances 120 --rows 1024 --cols 1024 --rounds 3 --json .run/bench/gateway.json

Against the running Orthanc of the stack file, in one run:
  * WADO-RS full-study retrieval (``multipart/related; type="application/dicom"``) of one
    large synthetic study, through the gateway and directly from Orthanc, alternating,
    ``--rounds`` times each; throughput = bytes / wall time (median).  The client is curl
    (``-o /dev/null``): a native HTTP stack, as a viewer's is, so that the figure is the
    server side's.  The same rounds are then made with an httpx client in this process,
    whose own CPU (more than the gateway's) competes with Orthanc and the gateway for the
    two cores; that ratio is printed too;
  * QIDO-RS ``studies?StudyInstanceUID=`` median latency through the gateway and direct
    (patient token, so the compartment filter and the token check run; both cached after
    the first call, as in a viewer session);
  * peak RSS (VmHWM) of the gateway process, which runs alone in a subprocess (uvicorn),
    before and after streaming the study: bounded memory means the growth stays far below
    the study size.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "docker" / "local")]

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid  # noqa: E402

from bridge.gateway.viewer_tokens import ViewerTokens  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.settings import bridge_config, save_config, sqlite_url  # noqa: E402
from tests.support.waits import wait_until  # noqa: E402

SECRET = "bench-viewer-secret-" + "b" * 32
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
PATIENT = ("urn:imaging-bridge:patient-id", "BENCH-GW")


def _instance(study: str, series: str, n: int, rows: int, cols: int, pid: str) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientID, ds.PatientName, ds.Modality = pid, "Bench^Gateway", "CT"
    ds.StudyDate, ds.AccessionNumber, ds.InstanceNumber = "20240101", pid[-12:], n
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored = "MONOCHROME2", 16, 12
    ds.HighBit, ds.PixelRepresentation = 11, 0
    ds.PixelData = np.random.default_rng(n).integers(0, 4095, (rows, cols),
                                                       dtype=np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _stow(orthanc: dict[str, Any], parts: list[bytes]) -> None:
    boundary = uuid.uuid4().hex
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
                    + p + b"\r\n" for p in parts) + b"--" + boundary.encode() + b"--\r\n"
    resp = httpx.post(orthanc["dicomweb_url"] + "/studies", content=body, timeout=600,
                      auth=(orthanc["username"], orthanc["password"]),
                      headers={"Content-Type": f'multipart/related; type="application/dicom"; '
                                               f"boundary={boundary}",
                               "Accept": "application/dicom+json"})
    resp.raise_for_status()


def build_study(orthanc: dict[str, Any], instances: int, rows: int, cols: int, pid: str
                ) -> tuple[str, int]:
    study, series = generate_uid(), generate_uid()
    batch: list[bytes] = []
    for n in range(1, instances + 1):
        batch.append(_instance(study, series, n, rows, cols, pid))
        if len(batch) == 10:
            _stow(orthanc, batch)
            batch = []
    if batch:
        _stow(orthanc, batch)
    return study, instances * rows * cols * 2


def delete_study(orthanc: dict[str, Any], study: str) -> None:
    auth = (orthanc["username"], orthanc["password"])
    found = httpx.post(orthanc["base_url"] + "/tools/lookup", content=study, auth=auth,
                       timeout=60).json()
    for item in found:
        if item.get("Type") == "Study":
            httpx.delete(orthanc["base_url"] + item["Path"], auth=auth, timeout=120)


def start_gateway(orthanc: dict[str, Any], fhir_url: str, tmp: Path
                  ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    archive = {"name": "orthanc", "base_url": orthanc["dicomweb_url"], "timeout": 600,
               "auth": {"kind": "basic", "username": orthanc["username"],
                        "password": orthanc["password"]}}
    config = bridge_config(
        archives=[archive], fhir_url=fhir_url, state_url=sqlite_url(tmp), api={"port": port},
        gateway={"enabled": True, "public_url": f"http://127.0.0.1:{port}/dicom-web",
                 "viewer_token_secret": SECRET, "validation": "jwks",
                 "jwks_uri": "http://127.0.0.1:9/jwks", "issuer": "http://127.0.0.1:9",
                 "audience": "http://127.0.0.1:9/fhir"})
    path = save_config(tmp / "bridge.yaml", config)
    code = ("import uvicorn; from bridge.config import load_settings; "
            "from bridge.api.app import create_app; from pathlib import Path; "
            f"app = create_app(load_settings(Path({str(path)!r})), run_sync=False); "
            f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', "
            "access_log=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    base = f"http://127.0.0.1:{port}/dicom-web"

    def refusing() -> bool:  # up: the gateway refuses a request without a token
        try:
            return httpx.get(base + "/studies", timeout=2).status_code == 401
        except httpx.HTTPError:
            return False

    try:
        wait_until(refusing, timeout=60, every=0.2, what="the gateway")
    except AssertionError:
        proc.kill()
        raise
    return proc, base


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Retrieve = Callable[[str, dict[str, str]], tuple[int, float]]


def httpx_retriever(client: httpx.Client) -> Retrieve:
    def retrieve(url: str, headers: dict[str, str]) -> tuple[int, float]:
        started = time.perf_counter()
        total = 0
        with client.stream("GET", url, headers={**headers, "Accept": ACCEPT}) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_raw(1 << 20):
                total += len(chunk)
        return total, time.perf_counter() - started
    return retrieve


def curl_retrieve(url: str, headers: dict[str, str]) -> tuple[int, float]:
    """One retrieval by curl into /dev/null: (bytes, wall seconds, process start included)."""
    args = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download}",
            "-H", f"Accept: {ACCEPT}"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    started = time.perf_counter()
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    return int(out), time.perf_counter() - started


def alternate(rounds: int, retrieve: Retrieve, direct: tuple[str, dict[str, str]],
              gateway: tuple[str, dict[str, str]], gateway_pid: int
              ) -> tuple[int, list[float], list[float], float]:
    """``rounds`` retrievals each way, alternating which goes first (so neither always
    follows the other's page-cache and CPU-frequency state): (bytes, direct seconds,
    gateway seconds, gateway CPU seconds)."""
    retrieve(*direct)  # warm Orthanc's cache once
    retrieve(*gateway)  # and the gateway's token/compartment caches
    direct_t: list[float] = []
    gw_t: list[float] = []
    gw_cpu, size = 0.0, 0
    for n in range(rounds):
        for which in ("direct", "gateway") if n % 2 == 0 else ("gateway", "direct"):
            if which == "direct":
                size, secs = retrieve(*direct)
                direct_t.append(secs)
            else:
                c0 = cpu_seconds(gateway_pid)
                gsize, gsecs = retrieve(*gateway)
                gw_cpu += cpu_seconds(gateway_pid) - c0
                gw_t.append(gsecs)
        assert gsize == size, (gsize, size)
    return size, direct_t, gw_t, gw_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=os.environ.get("BRIDGE_TEST_STACK",
                                                          str(REPO / ".run" / "stack.json")))
    parser.add_argument("--instances", type=int, default=120)
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--cols", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--qido", type=int, default=60)
    parser.add_argument("--json", default=str(REPO / ".run" / "bench" / "gateway.json"))
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed (apt-get install curl)")
    stack = json.loads(Path(args.stack).read_text())
    orthanc = stack["orthanc"]
    fhir_url = stack.get("hapi", {}).get("fhir_url", "http://127.0.0.1:9/fhir")
    pid = f"BGW{uuid.uuid4().hex[:10].upper()}"

    t0 = time.perf_counter()
    study, pixel_bytes = build_study(orthanc, args.instances, args.rows, args.cols, pid)
    load_s = time.perf_counter() - t0
    print(f"study loaded: {args.instances} instances, {pixel_bytes / 1e6:.0f} MB pixel data "
          f"in {load_s:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_gateway(orthanc, fhir_url, Path(tmp))
        try:
            token = ViewerTokens(secret=SECRET, audience=base).mint(
                patient=f"{PATIENT[0]}|{pid}")
            gw_headers = {"Authorization": f"Bearer {token}"}
            direct_url = f"{orthanc['dicomweb_url']}/studies/{study}"
            gw_url = f"{base}/studies/{study}"
            auth = (orthanc["username"], orthanc["password"])
            basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            rss_idle = peak_rss_mb(proc.pid)
            direct = (direct_url, {"Authorization": f"Basic {basic}"})
            size, direct_t, gw_t, gw_cpu = alternate(args.rounds, curl_retrieve, direct,
                                                     (gw_url, gw_headers), proc.pid)
            with httpx.Client(timeout=600, auth=auth) as dc, httpx.Client(timeout=600) as gc:
                _, hx_direct_t, hx_gw_t, _ = alternate(args.rounds, httpx_retriever(gc), direct,
                                                       (gw_url, gw_headers), proc.pid)
                rss_after = peak_rss_mb(proc.pid)
                q_direct, q_gw = [], []
                params = {"StudyInstanceUID": study}
                gc.get(f"{base}/studies", params=params, headers=gw_headers).raise_for_status()
                for _ in range(args.qido):
                    s = time.perf_counter()
                    dc.get(f"{orthanc['dicomweb_url']}/studies", params=params).raise_for_status()
                    q_direct.append(time.perf_counter() - s)
                    s = time.perf_counter()
                    r = gc.get(f"{base}/studies", params=params, headers=gw_headers)
                    r.raise_for_status()
                    q_gw.append(time.perf_counter() - s)
                    assert len(r.json()) == 1
        finally:
            proc.terminate()
            proc.wait(10)
            delete_study(orthanc, study)  # the shared Orthanc is not ours to fill

    direct_mbs = size / statistics.median(direct_t) / 1e6
    gw_mbs = size / statistics.median(gw_t) / 1e6
    result = {
        "study_bytes": size,
        "instances": args.instances,
        "rounds": args.rounds,
        "wado_direct_MBps": round(direct_mbs, 1),
        "wado_gateway_MBps": round(gw_mbs, 1),
        "wado_ratio": round(gw_mbs / direct_mbs, 3),
        "qido_direct_median_ms": round(statistics.median(q_direct) * 1000, 2),
        "qido_gateway_median_ms": round(statistics.median(q_gw) * 1000, 2),
        "qido_overhead_median_ms": round((statistics.median(q_gw)
                                          - statistics.median(q_direct)) * 1000, 2),
        "wado_ratio_best": round(min(direct_t) / min(gw_t), 3),
        "client": "curl",
        "wado_ratio_httpx_client": round(statistics.median(hx_direct_t)
                                         / statistics.median(hx_gw_t), 3),
        "gateway_cpu_s_per_retrieval": round(gw_cpu / args.rounds, 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "gateway_peak_rss_idle_MB": round(rss_idle, 1),
        "gateway_peak_rss_after_MB": round(rss_after, 1),
        "gateway_rss_growth_MB": round(rss_after - rss_idle, 1),
        "targets": {"wado_ratio": ">= 0.8", "qido_overhead_ms": "<= 10"},
    }
    print(f"WADO-RS full study ({size / 1e6:.0f} MB): direct {direct_mbs:.0f} MB/s, "
          f"gateway {gw_mbs:.0f} MB/s, ratio {result['wado_ratio']}")
    print(f"  best of {args.rounds}: ratio {result['wado_ratio_best']}; gateway CPU "
          f"{result['gateway_cpu_s_per_retrieval']} s per retrieval; load {os.getloadavg()}")
    print(f"  with an httpx client in this process instead of curl: ratio "
          f"{result['wado_ratio_httpx_client']} (the client's CPU competes for the cores)")
    print(f"QIDO-RS median: direct {result['qido_direct_median_ms']} ms, gateway "
          f"{result['qido_gateway_median_ms']} ms, overhead {result['qido_overhead_median_ms']} ms")
    print(f"gateway peak RSS: {rss_idle:.0f} MB idle, {rss_after:.0f} MB after streaming "
          f"{size / 1e6:.0f} MB x {args.rounds} (growth {rss_after - rss_idle:.0f} MB)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
