"""The migration report reads the task queue alone: a migrated study's counts come from the
verification (the task's result), a failed one's missing instances from its error."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from bridge.migration.errors import StudyIncomplete, missing_in
from bridge.migration.report import report_csv, report_json, row_of
from bridge.state.tasks import Task

NOW = datetime(2026, 12, 8, tzinfo=UTC)
PAYLOAD = {"study_date": "2019-03-04", "modalities": ["CT"], "series": 2, "instances": 5}


def task(key: str, status: str, *, result: dict[str, Any] | None = None,
         error: str | None = None, attempts: int = 1) -> Task:
    return Task(kind="migrate.pacs", key=key, status=status, payload=PAYLOAD, result=result,
                attempts=attempts, last_error=error, claimed_seq=1, due_at=None,
                lease_owner=None, updated_at=NOW, done_at=None)


def test_a_failed_verification_names_its_missing_instances_in_the_report() -> None:
    error = StudyIncomplete("1.2.3", missing=["1.2.3.4", "1.2.3.5"],
                            reasons="the source failed to send 2")
    row = row_of(task("1.2.3", "failed", error=f"{error.kind}: {error}", attempts=2))
    assert (row.state, row.missing, row.instances, row.attempts) == (
        "failed", ("1.2.3.4", "1.2.3.5"), 5, 2)
    assert "the source failed to send 2" in (row.error or "")


def test_missing_uids_survive_an_error_cut_short_and_other_errors_name_none() -> None:
    text = str(StudyIncomplete("1.2", missing=["1.2.1", "1.2.22222"]))
    assert missing_in(text[:-3]) == ["1.2.1", "1.2.22"]  # the queue cuts at 4000 chars
    assert missing_in("legacy-aborted: association aborted") == []
    assert missing_in(None) == []


def test_a_migrated_study_reports_the_verified_counts() -> None:
    result = {"instances": 6, "archive_instances": 6, "series": 2, "retried": 1,
              "coerced": 6}
    row = row_of(task("1.2.9", "done", result=result))
    assert (row.state, row.instances, row.archive_instances, row.retried, row.coerced,
            row.missing) == ("migrated", 6, 6, 1, 6, ())


def test_csv_and_json_list_every_study() -> None:
    rows = [row_of(task("1.2.9", "done", result={"instances": 5, "archive_instances": 5})),
            row_of(task("1.2.8", "due", attempts=0))]
    table = list(csv.DictReader(io.StringIO(report_csv(rows))))
    assert [(r["study_uid"], r["state"], r["instances"], r["modalities"]) for r in table] == [
        ("1.2.9", "migrated", "5", "CT"), ("1.2.8", "queued", "5", "CT")]
    doc = json.loads(report_json("pacs", rows))
    assert doc["counts"] == {"queued": 1, "in progress": 0, "migrated": 1, "failed": 0}
    assert [s["study_uid"] for s in doc["studies"]] == ["1.2.9", "1.2.8"]
