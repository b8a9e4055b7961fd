"""Studies dated empty, missing, invalid or out of range reach the EHR (issue 12 item 3),
against a dedicated Orthanc and the real HAPI.

QIDO date ranges (PS3.4 C.2.2.2.5) never match such a study in Orthanc 1.10: an absent
StudyDate matches no range, ``abcdefgh`` sorts after every date, and 1975 / 2099 lie outside
the backfill's 1980-to-today walk and the scheduled reconciliation's 7-day window.  Only the
undated pass (a QIDO listing without a date filter) finds them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bridge.cli import app as cli_app
from samples.generator import GeneratedStudy
from tests.integration.fault_helpers import summary, write_config
from tests.integration.realtime.realtime_helpers import (
    imaging_study,
    make_studies,
    realtime_settings,
    store_in_orthanc,
)
from tests.support.servers import RunningBridge
from tests.support.settings import archive_entry
from tests.support.waits import wait_until

#: StudyDate of each study as stored (None: the attribute is removed)
ODD_DATES: tuple[str | None, ...] = ("", None, "abcdefgh", "19750612", "20990101")


def _store_odd_dates(server: Any, studies: list[GeneratedStudy]) -> dict[str, str | None]:
    """Each study stored with one of :data:`ODD_DATES`; study UID -> its StudyDate."""
    dated: dict[str, str | None] = {}
    for study, when in zip(studies, ODD_DATES, strict=True):
        instances = list(study.instances())
        for ds in instances:
            if when is None:
                del ds.StudyDate
            else:
                ds.StudyDate = when  # pydicom writes 'abcdefgh' as given (with a warning)
        store_in_orthanc(server, instances)
        dated[study.study_uid] = when
    return dated


def _assert_in_the_ehr(hapi: Any, dated: dict[str, str | None]) -> None:
    for uid, when in dated.items():
        found = imaging_study(hapi, uid)
        assert found is not None, f"study dated {when!r} is not in the EHR"
        if when in ("19750612", "20990101"):
            assert found["started"].startswith(f"{when[:4]}-{when[4:6]}-{when[6:]}")
        else:  # no usable date: an ImagingStudy without `started` (the mapping warns)
            assert "started" not in found, (when, found.get("started"))


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_backfill_syncs_studies_dated_empty_missing_invalid_and_out_of_range(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    server = orthanc_factory()
    dated = _store_odd_dates(server, make_studies(hapi, ns, count=len(ODD_DATES)))
    config = write_config(
        tmp_path / "bridge.yaml", archives=[archive_entry(server, ns.name("arc"))],
        fhir_url=hapi.fhir_url, state_url=f"sqlite:///{tmp_path / 'state.db'}")

    # the default range: 1980 to today, then every study outside it
    result = CliRunner().invoke(cli_app, ["backfill", "--config", str(config),
                                          "--settle", "30"])
    assert result.exit_code == 0, result.output
    figures = summary(result.stdout)
    assert figures["synced"] == len(dated) and figures["failed"] == 0, result.stdout
    assert f"{len(dated)} studies outside the dates" in result.stdout
    _assert_in_the_ehr(hapi, dated)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_scheduled_reconciliation_syncs_studies_no_date_window_finds(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    server = orthanc_factory()  # no notifier: only the scheduled reconciliation can see them
    dated = _store_odd_dates(server, make_studies(hapi, ns, count=len(ODD_DATES)))
    # the default 7-day window: none of these studies is in it
    settings = realtime_settings(server, hapi, tmp_path, ns,
                                 realtime={"reconcile_interval": 1.0})
    assert settings.realtime.reconcile_window_days == 7

    def all_in_the_ehr() -> bool:
        return all(imaging_study(hapi, uid) is not None for uid in dated)

    with RunningBridge(settings) as bridge:
        wait_until(all_in_the_ehr, timeout=90, what="the undated studies in the EHR")
        reports = bridge.realtime.last_reconcile
    assert reports, "no scheduled reconciliation ran"
    _assert_in_the_ehr(hapi, dated)
