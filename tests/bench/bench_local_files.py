"""LocalFilesSource (bridge/archive/local_files.py) against the benchmarks' in-memory
SyntheticArchive (fakes.py): can the scale benchmarks run on real files?

    .venv/bin/python tests/bench/bench_local_files.py
    .venv/bin/python tests/bench/bench_local_files.py --studies 500 --profile mixed

Generates ``--studies`` studies (samples.generator), writes them as Part-10 files in a temp
dir, indexes them (pydicom ``stop_before_pixels`` + SQLite), then times what the sync asks
of an archive: listing every study in pages, one study by UID, and a study's WADO-RS
metadata; the same for a SyntheticArchive of the same size.  Reported per file and per
study, with the set-up time of a 20,000-study archive extrapolated from them.  Writes
.run/bench/local_files.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bridge.archive.dicomjson import STUDY_UID, first_str  # noqa: E402
from bridge.archive.local_files import LocalFilesSource  # noqa: E402
from samples.generator import generate_studies, write_part10  # noqa: E402
from tests.bench.fakes import SyntheticArchive  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402

SCALE = 20_000


def _ms(seconds: float, n: int) -> float:
    return round(seconds * 1000 / max(1, n), 3)


async def _queries(source: LocalFilesSource) -> dict[str, float]:
    started = time.perf_counter()
    rows = [r async for r in source.iter_studies()]
    listed = time.perf_counter() - started
    uids = [u for r in rows[:200] if (u := first_str(r, STUDY_UID))]
    started = time.perf_counter()
    for uid in uids:
        await source.search_studies({"StudyInstanceUID": uid})
    by_uid = time.perf_counter() - started
    started = time.perf_counter()
    for uid in uids:
        await source.study_instances(uid)
    metadata = time.perf_counter() - started
    return {"list_ms_per_study": _ms(listed, len(rows)), "qido_by_uid_ms": _ms(by_uid, len(uids)),
            "metadata_ms_per_study": _ms(metadata, len(uids))}


def _synthetic(count: int, profile: str) -> dict[str, float]:
    started = time.perf_counter()
    archive = SyntheticArchive(count, profile=profile)
    setup = time.perf_counter() - started
    n = min(count, 200)
    started = time.perf_counter()
    for i in range(n):
        json.loads(archive.metadata(i))
    metadata = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(n):
        archive.study_record(i)
    record = time.perf_counter() - started
    return {"setup_s": round(setup, 2), "metadata_ms_per_study": _ms(metadata, n),
            "qido_record_ms_per_study": _ms(record, n)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--profile", default="small", choices=["small", "typical", "mixed"])
    parser.add_argument("--json", default=str(ROOT / ".run" / "bench" / "local_files.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-local-files-") as tmp:
        folder = Path(tmp) / "files"
        started, files = time.perf_counter(), 0
        for study in generate_studies(args.studies, seed=1, profile=args.profile):
            where = folder / study.truth.study_uid
            where.mkdir(parents=True)
            for n, ds in enumerate(study.instances()):
                (where / f"{n:04d}.dcm").write_bytes(write_part10(ds))
                files += 1
        written = time.perf_counter() - started
        started = time.perf_counter()
        source = LocalFilesSource(folder, index=Path(tmp) / "index.sqlite")
        indexed = time.perf_counter() - started
        started = time.perf_counter()
        source.reindex()
        unchanged = time.perf_counter() - started
        queries = asyncio.run(_queries(source))
        source.close()
    per_study_files = files / args.studies
    local = {"files": files, "write_ms_per_file": _ms(written, files),
             "index_ms_per_file": _ms(indexed, files),
             "reindex_unchanged_ms_per_file": _ms(unchanged, files), **queries,
             "setup_s_for_20000_studies": round((written + indexed) / args.studies * SCALE)}
    synthetic = _synthetic(args.studies, args.profile)
    report: dict[str, Any] = {
        "bench": "local_files", "studies": args.studies, "profile": args.profile,
        "files_per_study": round(per_study_files, 2), "local_files": local,
        "synthetic_archive": synthetic, "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }
    print(f"{args.studies} {args.profile} studies, {files} Part-10 files: write "
          f"{local['write_ms_per_file']} ms/file, index {local['index_ms_per_file']} ms/file, "
          f"unchanged reindex {local['reindex_unchanged_ms_per_file']} ms/file; listing "
          f"{local['list_ms_per_study']} ms/study, QIDO by UID {local['qido_by_uid_ms']} ms, "
          f"metadata {local['metadata_ms_per_study']} ms/study")
    print(f"SyntheticArchive: set-up {synthetic['setup_s']} s, metadata "
          f"{synthetic['metadata_ms_per_study']} ms/study, QIDO record "
          f"{synthetic['qido_record_ms_per_study']} ms/study")
    print(f"a {SCALE:,}-study archive as files: about {local['setup_s_for_20000_studies']:,} s "
          f"to write and index before the benchmark starts")
    path = write_report(report, args.json)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
