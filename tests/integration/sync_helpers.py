"""Builders shared by the sync integration tests: load studies, seed the EHR, make settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from bridge.config import Settings
from samples.generator import GeneratedStudy, StudyTruth, generate_studies
from samples.load import load_studies
from samples.seed_ehr import seed_ehr
from tests.support.settings import (
    REPO_ROOT,
    archive_entry,
    bridge_config,
    settings_from,
    sqlite_url,
)

__all__ = ["REPO_ROOT", "Loaded", "bridge_settings", "fhir_search", "load_and_seed",
           "study_by_uid"]


@dataclass
class Loaded:
    studies: list[GeneratedStudy]

    @property
    def truths(self) -> list[StudyTruth]:
        return [s.truth for s in self.studies]

    @property
    def dates(self) -> tuple[date, date]:
        ds = [date.fromisoformat(f"{t.study_date[:4]}-{t.study_date[4:6]}-{t.study_date[6:8]}")
              for t in self.truths]
        return min(ds), max(ds)


def load_and_seed(orthanc: Any, hapi: Any, ns: Any, *, count: int, profile: str = "small",
                  seed_patients: float = 1.0) -> Loaded:
    seed = int(ns.token, 16) % 2**31
    studies = list(generate_studies(count, seed=seed, profile=profile,
                                    id_prefix=ns.token[:6].upper()))
    result = load_studies(studies, url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password)
    assert result.failed_studies == 0, result.errors
    seed_ehr([s.truth for s in studies], fhir_url=hapi.fhir_url,
             patients_fraction=seed_patients, seed=seed)
    return Loaded(studies)


def bridge_settings(orthanc: Any, hapi: Any, tmp_path: Path, *,
                    state_url: str | None = None, **sync: Any) -> Settings:
    """The sync tests' settings: the archive named ``orthanc``, quick backoff, a SQLite
    store in ``tmp_path`` unless ``state_url``; ``sync`` keys replace the defaults."""
    sync_settings = {"backoff_base": 0.2, "backoff_max": 2.0, "lease_seconds": 30.0,
                     "claim_batch": 20, **sync}
    config = bridge_config(archives=[archive_entry(orthanc)], fhir_url=hapi.fhir_url,
                           fhir={"batch_size": 10}, state_url=state_url or sqlite_url(tmp_path),
                           sync=sync_settings)
    return settings_from(tmp_path / "bridge.yaml", config)


def fhir_search(hapi: Any, resource_type: str, params: dict[str, str] | list[tuple[str, str]]
                ) -> list[dict[str, Any]]:
    """Every matching resource, all pages."""
    out: list[dict[str, Any]] = []
    with httpx.Client(timeout=60) as client:
        resp = client.get(f"{hapi.fhir_url}/{resource_type}", params=params)
        resp.raise_for_status()
        bundle = resp.json()
        while True:
            out += [e["resource"] for e in bundle.get("entry", [])
                    if e.get("search", {}).get("mode", "match") == "match"]
            nxt = [lnk["url"] for lnk in bundle.get("link", []) if lnk["relation"] == "next"]
            if not nxt:
                return out
            bundle = client.get(nxt[0]).json()


def study_by_uid(hapi: Any, uid: str) -> list[dict[str, Any]]:
    return fhir_search(hapi, "ImagingStudy", {"identifier": f"urn:dicom:uid|urn:oid:{uid}"})
