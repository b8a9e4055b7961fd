"""Helpers for the SMART app tests: a small FHIR R4 server, the SMART app alone, its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bridge.config import Settings, SmartSettings
from tests.support.wiring import smart_router


def imaging_study(n: int, patient: str, *, year: int = 2020, modality: str = "CT",
                  site: str = "Chest") -> dict[str, Any]:
    return {
        "resourceType": "ImagingStudy", "id": f"is-{patient}-{n}", "status": "available",
        "subject": {"reference": f"Patient/{patient}"},
        "identifier": [
            {"system": "urn:dicom:uid", "value": f"urn:oid:1.2.826.0.1.{n}"},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                  "code": "ACSN"}]}, "value": f"ACC{n}"}],
        "started": f"{year}-0{1 + n % 9}-1{n % 10}T10:00:00Z",
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                      "code": modality}],
        "numberOfSeries": 2, "numberOfInstances": 10 + n,
        "description": f"Study {n}",
        "endpoint": [{"reference": "Endpoint/ep1"}],
        "series": [{"uid": f"1.2.826.0.2.{n}", "modality": {"code": modality},
                    "bodySite": {"system": "http://snomed.info/sct", "code": "51185008",
                                 "display": site}}],
    }


def smart_only_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    app.include_router(smart_router(settings))
    return app


def smart_settings(tmp_path: Path, *, port: int, iss: str, **smart: Any) -> Settings:
    settings = Settings(state={"url": f"sqlite:///{tmp_path / 'state.db'}"})
    settings.api.port = port
    config: dict[str, Any] = {"enabled": True, "client_id": "imaging-app",
                              "iss_allowlist": [iss], "standalone_iss": iss,
                              "ohif_dist_dir": None, **smart}
    settings.smart = SmartSettings(**config)
    return settings
