"""Where MPPS instances are kept, and the keeper that applies N-CREATE / N-SET to them.

:class:`MppsStore` is what the state store offers (``bridge/state/worklist_ops.py``: rows
that survive a restart, each write queueing the FHIR report in the same transaction);
:class:`InMemoryMppsStore` is the same contract in memory, for tests and ``worklist
serve`` without a state store.  :class:`MppsKeeper` is the SCP's side: it reads the
instance, applies the state machine (:mod:`bridge.worklist.mpps`) and writes the version
it read, so of two concurrent N-SETs one wins and the other is refused (0x0110).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydicom.dataset import Dataset

from bridge.worklist.mpps import (
    DUPLICATE_INSTANCE,
    PROCESSING_FAILURE,
    MppsError,
    MppsRecord,
    apply_set,
    create_record,
)

#: the task kind that reports a step to the EHR (key: the MPPS SOP Instance UID)
MPPS_REPORT = "worklist.mpps"


class StoredStep(Protocol):
    @property
    def sop_instance_uid(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, Any]: ...
    @property
    def version(self) -> int: ...


class MppsStore(Protocol):
    def create_mpps(self, sop_instance_uid: str, *, status: str,
                    attributes: Mapping[str, Any], follow_up: str | None = None) -> bool: ...

    def update_mpps(self, sop_instance_uid: str, *, status: str,
                    attributes: Mapping[str, Any], version: int,
                    follow_up: str | None = None) -> bool: ...

    def mpps(self, sop_instance_uid: str) -> StoredStep | None: ...


@dataclass(frozen=True)
class _Step:
    sop_instance_uid: str
    status: str
    attributes: Mapping[str, Any]
    version: int


class InMemoryMppsStore:
    """:class:`MppsStore` in memory; the follow-ups queued are listed in ``queued``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[str, _Step] = {}
        self.queued: list[tuple[str, str]] = []

    def create_mpps(self, sop_instance_uid: str, *, status: str,
                    attributes: Mapping[str, Any], follow_up: str | None = None) -> bool:
        with self._lock:
            if sop_instance_uid in self._steps:
                return False
            self._steps[sop_instance_uid] = _Step(sop_instance_uid, status, attributes, 1)
            if follow_up:
                self.queued.append((follow_up, sop_instance_uid))
        return True

    def update_mpps(self, sop_instance_uid: str, *, status: str,
                    attributes: Mapping[str, Any], version: int,
                    follow_up: str | None = None) -> bool:
        with self._lock:
            known = self._steps.get(sop_instance_uid)
            if known is None or known.version != version - 1:
                return False
            self._steps[sop_instance_uid] = _Step(sop_instance_uid, status, attributes,
                                                  version)
            if follow_up:
                self.queued.append((follow_up, sop_instance_uid))
        return True

    def mpps(self, sop_instance_uid: str) -> _Step | None:
        with self._lock:
            return self._steps.get(sop_instance_uid)


def record_of(step: StoredStep | None) -> MppsRecord | None:
    return None if step is None else MppsRecord(step.sop_instance_uid, step.status,
                                                step.attributes, step.version)


class MppsKeeper:
    """Applies the modality's N-CREATE / N-SET to ``store``; each accepted write queues
    ``follow_up`` for the instance (None: nothing is reported)."""

    def __init__(self, store: MppsStore, *, follow_up: str | None = MPPS_REPORT) -> None:
        self._store = store
        self._follow_up = follow_up

    def record(self, sop_instance_uid: str) -> MppsRecord | None:
        return record_of(self._store.mpps(sop_instance_uid))

    def create(self, sop_instance_uid: str, attributes: Dataset) -> MppsRecord:
        record = create_record(sop_instance_uid, attributes)
        if not self._store.create_mpps(sop_instance_uid, status=record.status,
                                       attributes=record.attributes,
                                       follow_up=self._follow_up):
            raise MppsError("exists already",
                            status=DUPLICATE_INSTANCE, keyword="AffectedSOPInstanceUID")
        return record

    def set(self, sop_instance_uid: str, modification: Dataset) -> MppsRecord:
        record = apply_set(self.record(sop_instance_uid), sop_instance_uid, modification)
        if not self._store.update_mpps(sop_instance_uid, status=record.status,
                                       attributes=record.attributes, version=record.version,
                                       follow_up=self._follow_up):
            raise MppsError("changed meanwhile (concurrent N-SET)",
                            status=PROCESSING_FAILURE, keyword="PerformedProcedureStepStatus")
        return record
