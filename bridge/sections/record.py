"""Settings of the longitudinal record (issue 16): whether the sync also maps the reports
and radiation dose SRs it finds in a study, the dose rules it applies, and the pace of the
``record.map`` worker of ``serve``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from bridge.sections.base import REPO_MAPPINGS, StrictModel

__all__ = ["RecordSettings"]


class RecordSettings(StrictModel):
    """``record:``: off unless enabled."""

    #: map the report and radiation dose SRs of each synced study to DiagnosticReport and
    #: Observation resources (a ``record.map`` task queued per study the sync writes, run
    #: by ``serve``)
    enabled: bool = False
    #: which dose items become Observation components, their units and physical ranges
    dose_rules_file: Path = Field(
        default_factory=lambda: REPO_MAPPINGS / "record" / "dose_items.json")
    #: studies whose record is mapped at once by the record worker of ``serve``
    workers: int = Field(default=2, ge=1, le=32)
    #: record tasks claimed per round
    batch: int = Field(default=10, ge=1, le=500)
    #: a claimed record task is given back to the queue after this many seconds
    lease_seconds: float = Field(default=300.0, gt=0)
    #: attempts of a record task that fails for a retryable reason (the study's
    #: ImagingStudy not found yet, a concurrent change) before it is a failure; an outage
    #: waits however long it lasts
    max_attempts: int = Field(default=8, ge=1)
    #: the first retry's delay in seconds, doubled each attempt up to ``backoff_max``
    backoff_base: float = Field(default=2.0, gt=0)
    #: the longest delay between two attempts of one record task, in seconds
    backoff_max: float = Field(default=900.0, gt=0)
    #: seconds the idle worker waits before looking again (the sync wakes it at once when
    #: it queued record tasks)
    poll_interval: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _rules_file_exists(self) -> RecordSettings:
        # checked at start-up when the room runs; its content is read by the room's
        # builder (bridge.assembly.record_service), which names what is wrong inside
        if self.enabled and not self.dose_rules_file.is_file():
            raise ValueError(f"record.dose_rules_file: no file at {self.dose_rules_file}")
        return self
