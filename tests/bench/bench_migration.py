"""Benchmark of the migration's transfers (issue 15): a script that prints figures.

    .venv/bin/python tests/bench/bench_migration.py [--studies 10] [--profile typical]
        [--workers 1 2] [--output .run/bench/migration.json]

Starts its own servers (never the shared stack): DCMTK ``dcmqrscp`` as the legacy PACS,
loaded with ``--studies`` generated studies, its HostTable naming the two move
destinations; an Orthanc with its DICOM server on as the archive.  Then, in the same run,
the same studies are moved legacy -> archive:

- ``movescu``: DCMTK's own C-MOVE, one process per study, straight to the archive's
  DICOM AE (the physical limit the issue compares with);
- ``c-move-direct``: the engine's C-MOVE to the archive's AE (the bridge only verifies);
- ``c-move``: the engine's C-MOVE to the bridge's receiver, then STOW-RS;
- ``c-get``: the engine's C-GET, then STOW-RS;

each engine mode with each of ``--workers`` (a fresh SQLite state store each time; every
study verified against the archive's QIDO-RS).  The archive keeps the instances between
modes (Orthanc overwrites an instance stored again), so every mode moves every instance.
The issue's targets: direct >= 0.9x movescu, through the bridge >= 0.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docker" / "local"))

import devstack  # noqa: E402
from devservers.dcmqrscp import Dcmqrscp, store_files  # noqa: E402

from bridge.config import ArchiveSettings  # noqa: E402
from bridge.migration.engine import open_migrator, run_of  # noqa: E402
from bridge.migration.study import migration_kind  # noqa: E402
from bridge.sections.migration import MigrationSettings  # noqa: E402
from bridge.state import open_store  # noqa: E402
from samples.generator import GeneratedStudy, generate_studies  # noqa: E402
from tests.integration.migration.legacy_servers import settings_for, write_files  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

LEGACY_AE, ARCHIVE_AE, BRIDGE_AE = "LEGACY", "ARCHIVE", "BRIDGE"


def movescu(server: Dcmqrscp, studies: list[GeneratedStudy]) -> float:
    """Seconds for DCMTK's movescu to move every study to the archive, one by one."""
    started = time.monotonic()
    for study in studies:
        done = subprocess.run(
            ["movescu", "-S", "-aec", LEGACY_AE, "-aem", ARCHIVE_AE,
             "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study.study_uid}",
             server.host, str(server.port)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"movescu failed: {done.stderr[-500:]}")
    return time.monotonic() - started


async def engine(server: Dcmqrscp, studies: list[GeneratedStudy], archive: ArchiveSettings,
                 *, transfer: str, workers: int, receiver_port: int, work: Path
                 ) -> tuple[float, int]:
    """Seconds for the engine to migrate every study, and how many failed."""
    source = settings_for(f"bench-{transfer}-{workers}", LEGACY_AE, server.port).model_copy(
        update={"transfer": transfer,
                "move_destination": {"c-move-direct": ARCHIVE_AE,
                                     "c-move": BRIDGE_AE}.get(transfer)})
    migration = MigrationSettings(
        sources=[source], spool_dir=work / "spool", workers=workers,
        receiver={"ae_title": BRIDGE_AE, "host": "127.0.0.1", "port": receiver_port})
    store = open_store(f"sqlite:///{work / f'{source.name}.db'}")
    kind = migration_kind(source.name)
    for study in studies:
        store.enqueue_task(kind, study.study_uid)
    try:
        async with open_migrator(source, migration=migration, archive=archive) as migrator:
            started = time.monotonic()
            await run_of(store, migrator, migration).drain()
            seconds = time.monotonic() - started
        return seconds, store.task_counts(kind)["failed"]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=10)
    parser.add_argument("--profile", default="typical", help="samples.generator profile")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--output", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()

    archive_port, receiver_port = free_port(), free_port()
    config = {"DicomServerEnabled": True, "DicomPort": archive_port, "DicomAet": ARCHIVE_AE}
    figures: dict[str, Any] = {}
    with devstack.Orthanc(extra_config=config) as orthanc, Dcmqrscp(
            ae_title=LEGACY_AE,
            move_destinations={ARCHIVE_AE: ("127.0.0.1", archive_port),
                               BRIDGE_AE: ("127.0.0.1", receiver_port)}) as server, \
            tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        studies = list(generate_studies(args.studies, seed=42, profile=args.profile,
                                        id_prefix="BENCH"))
        files = write_files(studies, work)
        store_files(files, host=server.host, port=server.port, called_ae=LEGACY_AE,
                    timeout=1800)
        instances = len(files)
        megabytes = sum(p.stat().st_size for p in files) / 1e6
        print(f"{args.studies} studies, {instances} instances, {megabytes:.1f} MB")
        archive = ArchiveSettings(name="bench", base_url=orthanc.dicomweb_url,
                                  auth={"kind": "basic", "username": orthanc.username,
                                        "password": orthanc.password})

        def record(name: str, seconds: float, failed: int = 0) -> None:
            base = figures.get("movescu", {}).get("instances_per_second")
            rate = instances / seconds
            figures[name] = {"seconds": round(seconds, 2),
                             "instances_per_second": round(rate, 1),
                             "mb_per_second": round(megabytes / seconds, 3),
                             "vs_movescu": round(rate / base, 2) if base else 1.0,
                             "failed": failed}
            print(f"{name:24} {seconds:7.1f} s {rate:7.1f} inst/s "
                  f"{megabytes / seconds:6.2f} MB/s  x{figures[name]['vs_movescu']:.2f} "
                  f"movescu, failed {failed}")

        record("movescu", movescu(server, studies))
        for transfer in ("c-move-direct", "c-move", "c-get"):
            for workers in args.workers:
                seconds, failed = asyncio.run(engine(
                    server, studies, archive, transfer=transfer, workers=workers,
                    receiver_port=receiver_port, work=work))
                record(f"{transfer} workers={workers}", seconds, failed)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"studies": args.studies, "instances": instances,
                                           "megabytes": megabytes, "figures": figures},
                                          indent=2))


if __name__ == "__main__":
    main()
