"""Typed settings of the legacy PACS a migration reads from (issue 15).

One :class:`LegacySourceSettings` per legacy PACS: where its DIMSE service answers, which
AE titles the association uses, and the throttles that protect it (associations at once,
instances per second, the hours it may be read).  :class:`MigrationSettings` holds them;
the composition root hands each source's client only its own entry.

AE titles follow the AE value representation of PS3.5 6.2: at most 16 characters of the
default character repertoire, no backslash, no control characters, not only spaces
(leading and trailing spaces are not significant and are removed here).
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from bridge.sections.base import StrictModel

__all__ = ["LegacySourceSettings", "MigrationSettings", "MoveReceiverSettings", "TimeWindow",
           "ae_title"]

#: PS3.5 6.2 (AE): 16 bytes maximum
AE_TITLE_MAX = 16


def ae_title(value: str) -> str:
    """``value`` as a valid AE title (PS3.5 6.2, VR AE), spaces around it removed; a
    :class:`ValueError` names what is wrong."""
    title = value.strip(" ")
    if not title:
        raise ValueError("an AE title must not be empty or only spaces (PS3.5 6.2)")
    if len(title) > AE_TITLE_MAX:
        raise ValueError(f"AE title {title!r} is longer than {AE_TITLE_MAX} characters (PS3.5 6.2)")
    if "\\" in title or any(not (0x20 <= ord(c) < 0x7F) for c in title):
        raise ValueError(
            f"AE title {title!r} may hold only printable ASCII characters and no backslash "
            "(PS3.5 6.2)")
    return title


AeTitle = Annotated[str, AfterValidator(ae_title)]


class TimeWindow(StrictModel):
    """Hours of the day (the bridge's local time) a source may be read; ``end`` before
    ``start`` spans midnight (``19:00``-``07:00`` is the night); ``start == end`` is the
    whole day.  ``start`` is included, ``end`` is not."""

    #: first minute of the window (HH:MM, local time)
    start: time
    #: end of the window, not included; before ``start``: the next day's
    end: time

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give a time window in local time, without a UTC offset")
        return value

    def allows(self, moment: time) -> bool:
        """Whether ``moment`` lies inside the window."""
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class LegacySourceSettings(StrictModel):
    """One legacy PACS read over DIMSE (Study Root Query/Retrieve, PS3.4 C.6.2)."""

    #: our name for the source: in the migration queue, the report and logs
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    #: the source's own AE title (the *called* AE title of our associations)
    ae_title: AeTitle
    #: where the source's DICOM service listens
    host: str = Field(min_length=1)
    #: its TCP port (104, 11112 are usual)
    port: int = Field(ge=1, le=65535)
    #: our AE title as the source knows it (the *calling* AE title; legacy PACS usually
    #: answer only AE titles configured at their side)
    calling_ae_title: AeTitle = "IMAGING-BRIDGE"
    #: associations open at once towards this source, all kinds together
    max_associations: int = Field(default=2, ge=1, le=64)
    #: instances per second moved from this source at most; None: no limit
    instances_per_second: float | None = Field(default=None, gt=0)
    #: hours the source may be read; empty: any time
    time_windows: list[TimeWindow] = Field(default_factory=list)
    #: the most C-FIND responses the source returns for one query, when it is known to cut
    #: results off silently; a window whose query reaches it is split.  A source that says
    #: so itself (a Cancel status 0xFE00 after its matches, as Orthanc does) needs none.
    max_results: int | None = Field(default=None, ge=1)
    #: seconds to set up an association (TCP connect and A-ASSOCIATE)
    connect_timeout: float = Field(default=10.0, gt=0)
    #: seconds to wait for each DIMSE response once associated
    dimse_timeout: float = Field(default=60.0, gt=0)
    #: how studies leave the source: ``c-get`` (they come back on our association; nothing
    #: to set up at the source), ``c-move`` (the source sends them to the bridge's
    #: receiver, ``migration.receiver``, which it must know), ``c-move-direct`` (the source
    #: sends them straight to the archive's DICOM AE, ``move_destination``; no coercion)
    transfer: Literal["c-get", "c-move", "c-move-direct"] = "c-get"
    #: the AE title a C-MOVE names as destination, as the source knows it: the archive's
    #: DICOM AE for ``c-move-direct``; for ``c-move`` default ``migration.receiver.ae_title``
    move_destination: AeTitle | None = None

    @model_validator(mode="after")
    def _destination(self) -> LegacySourceSettings:
        if self.transfer == "c-move-direct" and self.move_destination is None:
            raise ValueError(f"migration source {self.name!r}: transfer c-move-direct needs "
                             "move_destination (the archive's AE title as the source knows it)")
        return self

    def open_at(self, moment: time) -> bool:
        """Whether the source may be read at ``moment`` (local time of day)."""
        return not self.time_windows or any(w.allows(moment) for w in self.time_windows)


class MoveReceiverSettings(StrictModel):
    """The bridge's C-STORE SCP, the move destination of ``transfer: c-move`` sources."""

    #: our AE title as a move destination (each such source must know it, with our address)
    ae_title: AeTitle = "BRIDGE-MIGRATE"
    #: the address it listens on
    host: str = "0.0.0.0"
    #: its TCP port (0: any free port, for tests)
    port: int = Field(default=11113, ge=0, le=65535)


class MigrationSettings(StrictModel):
    """The legacy sources of a migration (names are unique), where their studies go, and
    how the workers run."""

    #: the legacy PACS read over DIMSE, each with its own AE titles and throttles
    sources: list[LegacySourceSettings] = Field(default_factory=list)
    #: the archive (a name of ``archives[]``) the studies are stored into; None: the first
    archive: str | None = None
    #: coercion rules applied to each instance on its way in (mappings/migration.yaml's
    #: format: issuer of patient ID, accession prefix, institution names, patient-ID
    #: cross-reference, per source); None: instances are stored as received, byte for byte
    coercion_file: Path | None = None
    #: where retrieved studies are held until stored (one directory per study, removed
    #: once it is stored); None: the system's temporary directory
    spool_dir: Path | None = None
    #: studies migrated at once by ``migrate run`` (and by ``serve`` per source)
    workers: int = Field(default=2, ge=1, le=64)
    #: seconds a worker holds a study before another may take it over (a crashed
    #: worker's study is re-run after this); longer than the largest study takes
    lease_seconds: float = Field(default=900.0, gt=0)
    #: attempts at a study that keeps failing in a retryable way (an aborted association)
    #: before it is reported failed
    max_attempts: int = Field(default=5, ge=1)
    #: instances per STOW-RS request into the archive
    stow_chunk: int = Field(default=50, ge=1, le=1000)
    #: seconds the archive may take to answer one STOW-RS request
    stow_timeout: float = Field(default=300.0, gt=0)
    #: run each source's migration worker inside ``serve`` (else only ``migrate run``)
    run_in_serve: bool = False
    #: the gateway's QIDO-RS study search (default archive) also answers the legacy
    #: sources' studies (C-FIND), merged by Study Instance UID, the archive's row winning;
    #: its WADO-RS of a study only a source holds fetches it (C-GET) and queues the
    #: study's migration first (docs/migration.md, *Migration gateway*)
    gateway_union: bool = False
    #: the bridge's move destination, needed by sources with ``transfer: c-move``
    receiver: MoveReceiverSettings | None = None

    @model_validator(mode="after")
    def _receiver(self) -> MigrationSettings:
        moving = [s.name for s in self.sources if s.transfer == "c-move"]
        if moving and self.receiver is None:
            raise ValueError(f"migration.receiver is needed by the c-move sources "
                             f"{', '.join(moving)} (the bridge's move destination)")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> MigrationSettings:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"migration source name {source.name!r} is used twice")
            seen.add(source.name)
        return self

    def source(self, name: str) -> LegacySourceSettings:
        """The source called ``name``; :class:`KeyError` if none is."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)
