"""In-process fakes of a DICOMweb archive and a FHIR server (``httpx.MockTransport``), and a
runner wired to them with a real SQLite state store: the sync runner's unit tests drive
every kind of answer without a network."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings, FhirSettings, SyncSettings
from bridge.fhir.client import FhirClient
from bridge.mapping import MappingEngine, load_mapping
from bridge.state import StateStore, open_store
from bridge.sync.runner import SyncRunner
from samples.generator import GeneratedStudy, generate_studies
from tests.support.fake_archive import FakeArchive
from tests.support.fake_fhir import OUTCOME_422, FakeFhir

REPO_ROOT = Path(__file__).resolve().parents[3]
ARCHIVE = "arc"

__all__ = ["ARCHIVE", "OUTCOME_422", "REPO_ROOT", "Clock", "FakeArchive", "FakeFhir", "Rig",
           "make_rig", "studies"]


class Clock:
    """The store's clock, moved only by the test."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def studies(count: int, *, seed: int = 11) -> list[GeneratedStudy]:
    return list(generate_studies(count, seed=seed, profile="small", patients=count))


@dataclass
class Rig:
    runner: SyncRunner
    store: StateStore
    archive: FakeArchive
    fhir: FakeFhir
    clock: Clock

    def mark(self, *uids: str) -> None:
        self.store.mark_many_due(ARCHIVE, [(u, None) for u in uids], reason="manual")

    async def aclose(self) -> None:
        for client in self.runner.archives.values():
            await client.aclose()
        await self.runner.fhir.aclose()
        self.store.close()


def make_rig(path: Path, *, archive: FakeArchive, fhir: FakeFhir,
             runner_options: dict[str, Any] | None = None, **sync: Any) -> Rig:
    """A runner on the SQLite store at ``path``, the fakes behind its clients;
    ``runner_options`` are further ``SyncRunner`` arguments (e.g. the gateway's hooks)."""
    clock = Clock()
    store = open_store(f"sqlite:///{path}", clock=clock)
    archive_client = DicomwebClient(
        ArchiveSettings(name=ARCHIVE, base_url="http://archive.test/dicom-web"),
        transport=httpx.MockTransport(archive.handler))
    fhir_settings = FhirSettings(base_url="http://fhir.test/fhir", batch_size=10)
    fhir_client = FhirClient(fhir_settings, transport=httpx.MockTransport(fhir.handler))
    runner = SyncRunner(
        store=store, archives={ARCHIVE: archive_client}, fhir=fhir_client,
        engine=MappingEngine(load_mapping([REPO_ROOT / "mappings" / "default.yaml"])),
        sync=SyncSettings(**{"backoff_base": 0.5, "backoff_max": 60.0, "claim_batch": 10,
                             **sync}),
        fhir_settings=fhir_settings, worker_id="unit-worker", **(runner_options or {}),
    )
    return Rig(runner, store, archive, fhir, clock)
