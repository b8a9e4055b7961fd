"""``imaging-bridge worklist mismatches`` lists the studies not linked to their order
(patient mismatch) and ``worklist relink`` makes their links due again."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bridge.cli import app
from bridge.state import open_store
from bridge.worklist.link import WORKLIST_LINK

runner = CliRunner()


def test_mismatches_are_listed_and_relinked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    config = tmp_path / "bridge.yaml"
    config.write_text(json.dumps({
        "archives": [{"name": "main", "base_url": "http://127.0.0.1:9/dicom-web"}],
        "fhir": {"base_url": "http://127.0.0.1:9/fhir"}, "state": {"url": url}}))
    with open_store(url) as store:
        store.enqueue_task(WORKLIST_LINK, "main/2.25.7")
        [task] = store.claim_tasks(WORKLIST_LINK, limit=1, worker="t", lease_seconds=60)
        store.fail_task(task, worker="t", error="the study's subject Patient/b is not ...")
    listed = runner.invoke(app, ["worklist", "mismatches", "--json", "-c", str(config)])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert row["study"] == "main/2.25.7" and "Patient/b" in row["reason"]
    again = runner.invoke(app, ["worklist", "relink", "-c", str(config)])
    assert again.exit_code == 0 and "1 study links due again" in again.output
    with open_store(url) as store:
        relinked = store.task(WORKLIST_LINK, "main/2.25.7")
        assert relinked is not None and relinked.status == "due"
