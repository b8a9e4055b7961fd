"""CPU per WADO-RS metadata request: the bridge's archive client (httpx + httpcore + h11)
against aiohttp (C parser), on the stack's real Orthanc (issue 19: what is left of the
bridge's CPU per study once its own code is cheap).

    .venv/bin/python tests/bench/bench_http_client.py --stack .run/stack.json [--requests 300]

Both fetch the same studies' metadata, 100 requests at a time behind a semaphore of 16
(the archive client's pool at concurrency 8), and read the bodies with orjson; CPU is the
process's user+system time per request, alternating clients for ``--rounds`` rounds.
Writes .run/bench/http_client.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bridge.archive.client import DicomwebClient  # noqa: E402
from bridge.config import ArchiveSettings, AuthSettings  # noqa: E402
from bridge.sync.heap import freeze_startup_heap  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def bridge_client(orthanc: dict[str, Any], uids: list[str], concurrency: int) -> float:
    client = DicomwebClient(ArchiveSettings(
        name="bench", base_url=orthanc["dicomweb_url"], concurrency=concurrency,
        auth=AuthSettings(kind="basic", username=orthanc["username"],
                          password=orthanc["password"])))
    await client.study_instances(uids[0])  # connect outside the measurement
    cpu0 = cpu_seconds()
    for i in range(0, len(uids), 100):
        await asyncio.gather(*(client.study_instances(u) for u in uids[i:i + 100]))
    cpu = cpu_seconds() - cpu0
    await client.aclose()
    return cpu * 1000 / len(uids)


async def aiohttp_client(orthanc: dict[str, Any], uids: list[str], concurrency: int) -> float:
    token = base64.b64encode(f"{orthanc['username']}:{orthanc['password']}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Accept": "application/dicom+json"}
    slots = asyncio.Semaphore(concurrency * 2)
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def one(uid: str) -> Any:
            async with slots, session.get(
                    f"{orthanc['dicomweb_url']}/studies/{uid}/metadata") as resp:
                return orjson.loads(await resp.read())

        await one(uids[0])
        cpu0 = cpu_seconds()
        for i in range(0, len(uids), 100):
            await asyncio.gather(*(one(u) for u in uids[i:i + 100]))
        cpu = cpu_seconds() - cpu0
    return cpu * 1000 / len(uids)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    orthanc = json.loads(Path(args.stack).read_text())["orthanc"]
    lister = DicomwebClient(ArchiveSettings(
        name="bench", base_url=orthanc["dicomweb_url"],
        auth=AuthSettings(kind="basic", username=orthanc["username"],
                          password=orthanc["password"])))
    rows = await lister.search_studies({}, limit=args.requests * 2, includefield=("0020000D",))
    await lister.aclose()
    uids = [u for r in rows
            if re.fullmatch(r"[0-9.]{1,64}", u := r["0020000D"]["Value"][0])][:args.requests]
    freeze_startup_heap()
    runs: dict[str, list[float]] = {"bridge (httpx)": [], "aiohttp": []}
    for r in range(args.rounds):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            fn = bridge_client if name.startswith("bridge") else aiohttp_client
            runs[name].append(await fn(orthanc, uids, args.concurrency))
    return {
        "bench": "http_client", "requests": len(uids), "rounds": args.rounds,
        "concurrency": args.concurrency,
        "median_ms_cpu_per_request": {k: round(statistics.median(v), 3)
                                      for k, v in runs.items()},
        "runs_ms_cpu_per_request": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default=str(ROOT / ".run" / "stack.json"))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", default=str(ROOT / ".run" / "bench" / "http_client.json"))
    args = parser.parse_args(argv)
    report = asyncio.run(bench(args))
    for name, ms in report["median_ms_cpu_per_request"].items():
        print(f"{name:<16} {ms:6.3f} ms CPU per WADO-RS metadata request "
              f"(median of {args.rounds} x {report['requests']})")
    path = write_report(report, args.json)
    print(f"wrote {path}  (load average {report['load_average_end']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
