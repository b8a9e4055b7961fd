"""MPPS rows on a real PostgreSQL (the shared stack's, a schema of the test's own): the
duplicate N-CREATE, the version check, the report task queued with each write, and an
open step read again by a second store (a restart)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from bridge.state import open_store
from bridge.worklist.mpps import MppsError
from bridge.worklist.mpps_store import MPPS_REPORT, MppsKeeper

pytestmark = pytest.mark.integration

UID = "2.25.4242"


def _step(status: str, *, ssa: bool) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    if ssa:
        item = Dataset()
        item.AccessionNumber = "ACC-PG"
        ds.ScheduledStepAttributesSequence = [item]
    return ds


def test_mpps_rows_on_postgres(pg_schema_url: str) -> None:
    with open_store(pg_schema_url) as store:
        assert store.dialect == "postgresql"
        keeper = MppsKeeper(store)
        keeper.create(UID, _step("IN PROGRESS", ssa=True))
        with pytest.raises(MppsError) as duplicate:
            keeper.create(UID, _step("IN PROGRESS", ssa=True))
        assert duplicate.value.status == 0x0111
        task = store.task(MPPS_REPORT, UID)
        assert task is not None and task.status == "due"
    with open_store(pg_schema_url) as store:  # restarted
        keeper = MppsKeeper(store)
        assert keeper.set(UID, _step("COMPLETED", ssa=False)).version == 2
        assert not store.update_mpps(UID, status="DISCONTINUED", attributes={}, version=2)
        with pytest.raises(MppsError) as final:
            keeper.set(UID, _step("DISCONTINUED", ssa=False))
        assert final.value.error_id == 0xA710
        stored = store.mpps(UID)
        assert stored is not None and stored.status == "COMPLETED"
