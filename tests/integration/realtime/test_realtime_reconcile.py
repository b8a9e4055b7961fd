"""Reconciliation against a dedicated Orthanc and the real HAPI (issue 5, "Reconciliation")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from bridge.cli import app as cli_app
from tests.integration.realtime.realtime_helpers import (
    drain,
    imaging_study,
    make_studies,
    realtime_settings,
    reconcile_cli,
    series_instances,
    store_in_orthanc,
    study_counts,
)
from tests.support.servers import RunningBridge
from tests.support.waits import wait_until


def test_a_dropped_notification_is_repaired_by_the_scheduled_reconciliation(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    server = orthanc_factory()  # no notifier: the study's notification is "lost"
    study = make_studies(hapi, ns)[0]
    store_in_orthanc(server, series_instances(study, series=1, per_series=2))
    settings = realtime_settings(server, hapi, tmp_path, ns, realtime={
        "reconcile_interval": 1.0, "reconcile_window_days": 0})
    with RunningBridge(settings) as bridge:
        assert wait_until(lambda: study_counts(hapi, study.study_uid) == (1, 2), timeout=60,
                        what="ImagingStudy repaired by reconciliation")
        reports = bridge.realtime.last_reconcile
    assert reports and reports[0].archive == settings.archives[0].name


def test_reconcile_reports_missing_stale_and_gone_and_fix_repairs_them(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    server = orthanc_factory()
    a, b, c, d = make_studies(hapi, ns, count=4)
    ids = {s.study_uid: store_in_orthanc(server, series_instances(s, series=1, per_series=1))
           for s in (a, b, c)}
    settings = realtime_settings(server, hapi, tmp_path, ns, realtime={"delete_policy": "delete"})
    config = tmp_path / "bridge.yaml"
    stats = asyncio.run(drain(settings, [s.study_uid for s in (a, b, c)]))
    assert stats.synced == 3

    code, reports = reconcile_cli(config)
    assert code == 0 and reports[0]["drift"] == [], reports
    assert reports[0]["archive_studies"] == 3 and reports[0]["fhir_studies"] == 3

    store_in_orthanc(server, series_instances(b, series=1, per_series=2, first_number=5))
    with httpx.Client(auth=server.auth) as client:
        assert client.delete(f"{server.base_url}/studies/{ids[c.study_uid]}").status_code == 200
    store_in_orthanc(server, series_instances(d, series=1, per_series=1))

    code, reports = reconcile_cli(config)
    assert code == 3
    kinds = {(x["kind"], x["study_uid"]) for x in reports[0]["drift"]}
    assert kinds == {("missing-in-fhir", d.study_uid), ("stale", b.study_uid),
                     ("gone-from-archive", c.study_uid)}, kinds

    code, reports = reconcile_cli(config, "--fix")
    assert code == 3 and all(x["fixed"] for x in reports[0]["drift"])
    asyncio.run(drain(settings))

    code, reports = reconcile_cli(config)
    assert code == 0, reports
    assert study_counts(hapi, b.study_uid) == (2, 3)
    assert imaging_study(hapi, c.study_uid) is None
    assert imaging_study(hapi, d.study_uid) is not None


def test_reconcile_table_output_names_the_drift(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    server = orthanc_factory()
    study = make_studies(hapi, ns)[0]
    store_in_orthanc(server, series_instances(study, series=1, per_series=1))
    realtime_settings(server, hapi, tmp_path, ns)
    result = CliRunner().invoke(cli_app, ["reconcile", "--config", str(tmp_path / "bridge.yaml")],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 3, result.output
    assert "missing-in-fhir" in result.stdout and study.study_uid in result.stdout
    _ = RunningBridge  # the scheduled variant is covered above
