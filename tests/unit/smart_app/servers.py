"""Helpers for the SMART app tests: a small FHIR R4 server, the SMART app alone, its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bridge.config import Settings, SmartSettings
from smart_app import smart_router


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


class FakeFhir:
    """A FHIR R4 server with Patients and ImagingStudies, paging with ``next`` links."""

    def __init__(self) -> None:
        self.patients: dict[str, dict[str, Any]] = {}
        self.studies: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.page_size = 3
        self.app = FastAPI()
        self.base = ""  # set when served

        @self.app.get("/fhir/metadata")
        async def metadata() -> dict[str, Any]:
            return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}

        @self.app.get("/fhir/Patient/{pid}")
        async def patient(pid: str) -> Any:
            if pid not in self.patients:
                return JSONResponse({"resourceType": "OperationOutcome"}, 404)
            return self.patients[pid]

        @self.app.get("/fhir/ImagingStudy/{sid}")
        async def study(sid: str) -> Any:
            for s in self.studies:
                if s["id"] == sid:
                    return s
            return JSONResponse({"resourceType": "OperationOutcome"}, 404)

        @self.app.get("/fhir/ImagingStudy")
        async def search(request: Request) -> dict[str, Any]:
            self.requests.append(str(request.url))
            q = request.query_params
            pid = q.get("patient", "").removeprefix("Patient/")
            found = [s for s in self.studies if s["subject"]["reference"] == f"Patient/{pid}"]
            found.sort(key=lambda s: s["started"], reverse=q.get("_sort") == "-started")
            offset = int(q.get("_offset", "0"))
            page = found[offset:offset + self.page_size]
            entries: list[dict[str, Any]] = [
                {"resource": s, "search": {"mode": "match"}} for s in page]
            if page and q.get("_include") == "ImagingStudy:endpoint":
                entries.append({"resource": {"resourceType": "Endpoint", "id": "ep1",
                                             "address": "http://archive/dicom-web"},
                                "search": {"mode": "include"}})
            links = []
            if offset + self.page_size < len(found):
                params = dict(q)
                params["_offset"] = str(offset + self.page_size)
                links.append({"relation": "next", "url": f"{self.base}/ImagingStudy?"
                              + "&".join(f"{k}={v}" for k, v in params.items())})
            return {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                    "entry": entries, "link": links}


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
