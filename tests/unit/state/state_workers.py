"""Worker processes for the multi-process tests (SQLite here, PostgreSQL in integration).

Functions of a module (not of a test file) so ``multiprocessing``'s *spawn* start method
can import them in the child; each child opens its own store, as a real worker would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bridge.state import Completion, open_store
from bridge.state.engine import create_state_engine
from bridge.state.migrate import current_revision


def drain(url: str, worker: str, archive: str, batch: int, start: Any, out: str) -> None:
    """Claim and complete until nothing is left; write every claim to ``out`` (JSON).

    A record is ``[study_uid, worker, claimed_at, released_at, recorded]`` with wall-clock
    times, so the test can check that no study was held by two workers at once.
    """
    store = open_store(url)
    records: list[list[Any]] = []
    try:
        start.wait(timeout=60)
        while claimed := store.claim(
            worker=worker, limit=batch, lease_seconds=300, archive=archive
        ):
            claimed_at = time.time()
            time.sleep(0.001)  # "work", so that the two workers interleave
            done = store.complete_many(
                [
                    Completion(
                        c.archive,
                        c.study_uid,
                        c.claimed_seq,
                        "create",
                        content_hash=f"h-{c.study_uid}",
                        fhir_id=f"id-{c.study_uid}",
                        fhir_version="1",
                    )
                    for c in claimed
                ],
                worker=worker,
            )
            released_at = time.time()
            records.extend(
                [c.study_uid, worker, claimed_at, released_at, ok]
                for c, ok in zip(claimed, done, strict=True)
            )
    finally:
        store.close()
        Path(out).write_text(json.dumps(records))


def open_and_report(url: str, start: Any, out: str) -> None:
    """Open the store (running its migrations) once ``start`` is set; write the revision."""
    start.wait(timeout=60)
    open_store(url).close()
    engine = create_state_engine(url)
    try:
        Path(out).write_text(json.dumps(current_revision(engine)))
    finally:
        engine.dispose()
