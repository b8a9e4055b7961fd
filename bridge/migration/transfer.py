"""How a study's instances leave the legacy source (``migration.sources[].transfer``): the
three ways the per-study step can fetch them, behind one small interface.

=================  ===============================================  =====================
transfer           the instances travel                              the step then
=================  ===============================================  =====================
``c-get``          back on our association (PS3.4 C.4.3) into        coerces, STOWs
                   the study's spool directory
``c-move``         from the source to the bridge's receiver          coerces, STOWs
                   (:class:`~bridge.migration.receiver.MoveReceiver`,
                   PS3.4 C.4.2) into the spool directory
``c-move-direct``  from the source straight to the archive's         only verifies
                   DICOM AE
=================  ===============================================  =====================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bridge.migration.client import LegacySource, sop_classes_of
from bridge.migration.receiver import MoveReceiver
from bridge.migration.records import InstanceRecord
from bridge.migration.retrieve import ReceivedInstance

__all__ = ["DirectMove", "Fetched", "Get", "MoveToBridge", "Transfer"]


@dataclass(slots=True)
class Fetched:
    """What one fetch brought: the instances the bridge holds now (to be stored), those
    the source reported it could not send, and how many it says it sent."""

    received: list[ReceivedInstance] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    sent: int = 0


class Transfer(Protocol):
    """One way of fetching a study's instances from the source."""

    #: whether the bridge holds the instances afterwards and must store them
    stores: bool

    async def fetch(self, source: LegacySource, instances: Sequence[InstanceRecord], *,
                    whole: bool, folder: Path) -> Fetched:
        """Fetch ``instances`` (the whole study when ``whole``, else only these)."""
        ...


class Get:
    """C-GET: the instances come back on our association."""

    stores = True

    async def fetch(self, source: LegacySource, instances: Sequence[InstanceRecord], *,
                    whole: bool, folder: Path) -> Fetched:
        if whole:
            got = await source.get_study(instances[0].study_uid, spool=folder,
                                         sop_classes=sop_classes_of(instances))
        else:
            got = await source.get_instances(instances, spool=folder)
        return Fetched(got.received, list(got.failed), len(got.received))


class MoveToBridge:
    """C-MOVE to the bridge's receiver (``destination``: its AE title as the source knows
    it): the instances arrive on the source's own association while the C-MOVE runs."""

    stores = True

    def __init__(self, receiver: MoveReceiver, *, destination: str) -> None:
        self.receiver = receiver
        self.destination = destination

    async def fetch(self, source: LegacySource, instances: Sequence[InstanceRecord], *,
                    whole: bool, folder: Path) -> Fetched:
        with self.receiver.expect([i.sop_instance_uid for i in instances], folder) as inbox:
            if whole:
                outcome = await source.move_study(instances[0].study_uid,
                                                  destination=self.destination)
            else:
                outcome = await source.move_instances(instances,
                                                      destination=self.destination)
        return Fetched(list(inbox.received), list(outcome.failed_uids), outcome.completed)


class DirectMove:
    """C-MOVE straight to the archive's DICOM AE (``destination``): nothing passes through
    the bridge, the verification sees what arrived."""

    stores = False

    def __init__(self, *, destination: str) -> None:
        self.destination = destination

    async def fetch(self, source: LegacySource, instances: Sequence[InstanceRecord], *,
                    whole: bool, folder: Path) -> Fetched:
        if whole:
            outcome = await source.move_study(instances[0].study_uid,
                                              destination=self.destination)
        else:
            outcome = await source.move_instances(instances, destination=self.destination)
        return Fetched([], list(outcome.failed_uids), outcome.completed)
