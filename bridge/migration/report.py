"""The migration report of one source: every study with its state, its counts, the
instances missing from the archive and the error (``imaging-bridge migrate report``), as
CSV or JSON.  Read from the task queue alone, so any machine sharing the state store can
write it while workers run."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from bridge.jsonbytes import dumps
from bridge.migration.errors import missing_in
from bridge.migration.queue import STATE_NAMES, TaskQueue, task_pages
from bridge.migration.study import migration_kind
from bridge.state.tasks import Task

__all__ = ["ReportRow", "report_csv", "report_json", "report_rows", "row_of", "state_counts"]

COLUMNS = ("study_uid", "state", "attempts", "study_date", "modalities", "series",
           "instances", "archive_instances", "retried", "coerced", "missing", "error")


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One study of the report.  ``instances``: the source's count (the verification's
    when migrated, else the inventory's); ``missing``: the SOP Instance UIDs a failed
    verification named."""

    study_uid: str
    state: str
    attempts: int
    study_date: str | None
    modalities: tuple[str, ...]
    series: int | None
    instances: int | None
    archive_instances: int | None
    retried: int | None
    coerced: int | None
    missing: tuple[str, ...]
    error: str | None


def _int(data: Any, key: str) -> int | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) else None


def row_of(task: Task) -> ReportRow:
    """The report's row of one task."""
    payload = dict(task.payload or {})
    result = dict(task.result or {})
    return ReportRow(
        study_uid=task.key, state=STATE_NAMES.get(task.status, task.status),
        attempts=task.attempts, study_date=payload.get("study_date"),
        modalities=tuple(payload.get("modalities") or ()),
        series=_int(result, "series") or _int(payload, "series"),
        instances=_int(result, "instances") if result else _int(payload, "instances"),
        archive_instances=_int(result, "archive_instances"),
        retried=_int(result, "retried"), coerced=_int(result, "coerced"),
        missing=tuple(missing_in(task.last_error)) if task.status == "failed" else (),
        error=task.last_error)


def report_rows(queue: TaskQueue, source: str) -> Iterator[ReportRow]:
    """Every study queued for ``source``, by Study Instance UID."""
    for task in task_pages(queue, migration_kind(source)):
        yield row_of(task)


def state_counts(queue: TaskQueue, source: str) -> dict[str, int]:
    """Studies of ``source`` per state (every state listed)."""
    counts = queue.task_counts(migration_kind(source))
    return {STATE_NAMES[status]: counts.get(status, 0) for status in STATE_NAMES}


def report_csv(rows: Iterable[ReportRow]) -> str:
    """The rows as CSV (RFC 4180), a header first; lists joined by spaces."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = asdict(row)
        writer.writerow(["" if values[c] is None else
                         " ".join(values[c]) if isinstance(values[c], tuple) else values[c]
                         for c in COLUMNS])
    return out.getvalue()


def report_json(source: str, rows: Iterable[ReportRow]) -> str:
    """The rows as one JSON document: the source, counts per state, the studies."""
    studies = [asdict(r) for r in rows]
    counts = {state: 0 for state in STATE_NAMES.values()}
    for study in studies:
        counts[study["state"]] = counts.get(study["state"], 0) + 1
    return dumps({"source": source, "counts": counts, "studies": studies}).decode()
