"""What publishing the sharing manifests costs against the sync itself (issue 14, "Proof":
publication adds <= 20% to a study's sync time), against real servers.

Run:  BRIDGE_TEST_STACK=.run/stack.json .venv/bin/python tests/bench/bench_sharing.py
          [--studies 10] [--profile typical] [--output .run/bench/sharing.json]

Starts its own Orthanc (site A's archive); HAPI is the stack's (site A's EHR and the
registry, under an affinity-domain identifier system of this run).  Loads the studies,
seeds the EHR and registers each patient in the registry, then, in one process and with
the settings' defaults (sync workers, ``sharing.workers`` 2):

1. ``sync``: the studies marked due and drained (the sync's follow-ups queue the
   publications);
2. ``publish``: the publication queue drained (per study: WADO-RS metadata, two registry
   searches, KOS built, STOW-RS, ITI-65 transaction);
3. ``resync``: what the stored manifests cause: the studies synced again (their KO series
   is new to the EHR), and ``noop``: the publications this queues, which end after two
   QIDO-RS queries (their digest equals the last publication's; the metadata reads of
   this phase are counted and printed, expected 0).

Prints each phase's wall time per study and the ratio of the sharing phases (2 + 3) to
the first sync; writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for p in (REPO / "docker" / "local", REPO):
    sys.path.insert(0, str(p))

import devstack  # noqa: E402
import httpx  # noqa: E402

from bridge.assembly import sharing_publisher, sync_only  # noqa: E402
from bridge.config import Settings  # noqa: E402
from bridge.sharing.publisher import TASK_KIND  # noqa: E402
from bridge.sharing.service import publication_worker  # noqa: E402
from samples.generator import generate_studies  # noqa: E402
from samples.load import load_studies  # noqa: E402
from samples.seed_ehr import seed_ehr  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402
from tests.integration.sharing.sharing_sites import (  # noqa: E402
    ARCHIVE,
    affinity_system,
    site_a_settings,
)


class Run:
    """The run's namespace (what the test fixtures' ``ns`` gives)."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:10]


def count_metadata_reads(client: Any) -> list[int]:
    """Count the WADO-RS metadata reads of ``client`` from now on (the publisher's, in the
    noop phase: the sync is not running then)."""
    reads = [0]
    read = client.study_instances

    async def counted(study_uid: str) -> Any:
        reads[0] += 1
        return await read(study_uid)

    client.study_instances = counted
    return reads


async def phases(settings: Settings, uids: list[str]) -> dict[str, float]:
    timings: dict[str, float] = {}
    async with sync_only(settings) as ctx, sharing_publisher(settings, sync=ctx) as pub:
        worker = publication_worker(ctx.store, pub, settings.sharing, worker_id="bench")

        async def timed(name: str, work: Any) -> None:
            started = time.perf_counter()
            await work
            timings[name] = time.perf_counter() - started

        ctx.store.mark_many_due(ARCHIVE, [(u, None) for u in uids], reason="manual")
        await timed("sync", ctx.runner.drain())
        await timed("publish", worker.drain())
        ctx.store.mark_many_due(ARCHIVE, [(u, None) for u in uids], reason="manual")
        await timed("resync", ctx.runner.drain())
        reads = count_metadata_reads(ctx.archives[ARCHIVE])
        await timed("noop", worker.drain())
        timings["noop_metadata_reads"] = float(reads[0])
        counts = ctx.store.task_counts(TASK_KIND)
        failed = ctx.store.tasks(TASK_KIND, status="failed", limit=5)
    if counts.get("done", 0) != len(uids):
        raise SystemExit(f"publications not all done: {counts}; "
                         f"{[t.last_error for t in failed]}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=10)
    parser.add_argument("--profile", default="typical")
    parser.add_argument("--stack", default=None, help="stack.json (else BRIDGE_TEST_STACK)")
    parser.add_argument("--output", default=str(REPO / ".run" / "bench" / "sharing.json"))
    args = parser.parse_args()
    import os

    stack = devstack.load_state(args.stack or os.environ["BRIDGE_TEST_STACK"])
    hapi = stack["hapi"]
    run = Run()
    orthanc = devstack.Orthanc().start()
    try:
        studies = list(generate_studies(args.studies, seed=int(run.token, 16) % 2**31,
                                        profile=args.profile,
                                        id_prefix=run.token[:6].upper()))
        loaded = load_studies(studies, url=orthanc.dicomweb_url, username=orthanc.username,
                              password=orthanc.password)
        assert loaded.failed_studies == 0, loaded.errors
        seed_ehr([s.truth for s in studies], fhir_url=hapi.fhir_url)
        for key in {(s.truth.patient_issuer, s.truth.patient_id) for s in studies}:
            httpx.post(f"{hapi.fhir_url}/Patient", timeout=60, json={
                "resourceType": "Patient",
                "identifier": [{"system": affinity_system(run, key[0]), "value": key[1]}],
            }).raise_for_status()
        instances = sum(s.truth.instance_count for s in studies)
        with tempfile.TemporaryDirectory() as tmp:
            settings = site_a_settings(orthanc, hapi, Path(tmp), run)
            timings = asyncio.run(phases(settings, [s.study_uid for s in studies]))
    finally:
        orthanc.stop()
    n = len(studies)
    noop_reads = int(timings.pop("noop_metadata_reads"))
    sharing = timings["publish"] + timings["resync"] + timings["noop"]
    report = {
        "studies": n, "instances": instances, "profile": args.profile,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "ms_per_study": {k: round(1000 * v / n, 1) for k, v in timings.items()},
        "publish_over_sync": round(timings["publish"] / timings["sync"], 3),
        "sharing_over_sync": round(sharing / timings["sync"], 3),
        "noop_metadata_reads": noop_reads,
        "target": "publication adds <= 20% to a study's sync time",
        "machine": platform.platform(),
    }
    for name in ("sync", "publish", "resync", "noop"):
        print(f"{name:8s} {report['ms_per_study'][name]:8.1f} ms per study")
    print(f"publish / sync: {report['publish_over_sync']:.2f}; all sharing phases / sync: "
          f"{report['sharing_over_sync']:.2f} (target <= 0.20)")
    print(f"noop publications' WADO-RS metadata reads: {noop_reads} of {n} studies")
    print(f"written {write_report(report, args.output)}")


if __name__ == "__main__":
    main()
