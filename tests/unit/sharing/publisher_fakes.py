"""In-process fakes of the publisher's collaborators: an archive that keeps what is
STOWed into it (the first copy of a SOP Instance UID, as Orthanc does by default) and a
document registry that applies ITI-65 bundles with the conditional create and the
supersede PUTs the real one applies (the real servers: tests/integration/sharing)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydicom

from bridge.errors import FhirBusy, PatientNotFound, StudyGone
from bridge.sharing.mhd import DICOM_UID_SYSTEM
from bridge.sharing.publish import ProvideOutcome

JSON = dict[str, Any]


@dataclass
class FakeArchive:
    """Studies by UID; ``store`` adds the manifest to its study like STOW-RS does."""

    studies: dict[str, list[JSON]] = field(default_factory=dict)
    stored: list[bytes] = field(default_factory=list)
    #: WADO-RS metadata reads, QIDO-RS queries
    metadata_reads: int = 0
    qido_calls: int = 0

    async def study_instances(self, study_uid: str) -> list[JSON]:
        if study_uid not in self.studies:
            raise StudyGone(f"study {study_uid} is not in the archive")
        self.metadata_reads += 1
        return [dict(ds) for ds in self.studies[study_uid]]

    async def study_series(self, study_uid: str) -> list[JSON]:
        """QIDO-RS series of the study: UID, modality, instance count, per series."""
        if study_uid not in self.studies:
            raise StudyGone(f"study {study_uid} is not in the archive")
        rows: dict[str, JSON] = {}
        for ds in self.studies[study_uid]:
            uid = ds["0020000E"]["Value"][0]
            row = rows.setdefault(uid, {"0020000E": ds["0020000E"],
                                        "00080060": ds.get("00080060", {"vr": "CS"}),
                                        "00201209": {"vr": "IS", "Value": [0]}})
            row["00201209"]["Value"][0] += 1
        self.qido_calls += 1
        return list(rows.values())

    async def search_studies(self, filters: Mapping[str, str] | None = None, *,
                             limit: int | None = None, offset: int = 0,
                             includefield: Sequence[str] = ()) -> list[JSON]:
        """QIDO-RS of one study by StudyInstanceUID: its first instance's values of the
        asked fields, and its counts."""
        uid = (filters or {}).get("StudyInstanceUID", "")
        if uid not in self.studies:
            return []
        instances = self.studies[uid]
        row = {k: v for k, v in instances[0].items() if k in includefield}
        row["0020000D"] = {"vr": "UI", "Value": [uid]}
        row["00201208"] = {"vr": "IS", "Value": [len(instances)]}
        self.qido_calls += 1
        return [row]

    async def store(self, part10: bytes) -> None:
        self.stored.append(part10)
        ds = pydicom.dcmread(io.BytesIO(part10)).to_json_dict()
        instances = self.studies.setdefault(ds["0020000D"]["Value"][0], [])
        if all(i["00080018"] != ds["00080018"] for i in instances):
            instances.append(ds)

    def bytes_of(self, sop_uid: str) -> bytes:
        """The first stored copy of a SOP Instance UID (the one the archive keeps)."""
        return next(b for b in self.stored
                    if pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID == sop_uid)


@dataclass
class FakeRegistry:
    """Patients by identifier, DocumentReferences and Binaries by id."""

    base_url: str = "https://registry.test/fhir"
    patients: dict[str, str] = field(default_factory=dict)  # "system|value" -> id
    documents: dict[str, JSON] = field(default_factory=dict)
    binaries: dict[str, bytes] = field(default_factory=dict)
    provided: list[JSON] = field(default_factory=list)
    #: errors raised by the next calls to provide (then it works)
    failures: list[Exception] = field(default_factory=list)

    def add_patient(self, identifier: Mapping[str, str]) -> str:
        key = f"{identifier['system']}|{identifier['value']}"
        self.patients[key] = f"p{len(self.patients) + 1}"
        return f"Patient/{self.patients[key]}"

    async def patient(self, identifier: Mapping[str, str], *, create: bool = False) -> str:
        found = self.patients.get(f"{identifier['system']}|{identifier['value']}")
        if found is None and create:
            return self.add_patient(identifier)
        if found is None:
            raise PatientNotFound("no such Patient in the registry")
        return f"Patient/{found}"

    def current(self) -> list[JSON]:
        return [d for d in self.documents.values() if d["status"] == "current"]

    async def current_manifests(self, patient: str, study_uid: str) -> list[JSON]:
        related = {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study_uid}"}
        return [dict(d) for d in self.current() if d["subject"]["reference"] == patient
                and {"identifier": related} in d["context"]["related"]]

    async def deprecate(self, documents: Sequence[JSON]) -> None:
        for d in documents:
            self.documents[d["id"]] = {**self.documents[d["id"]], "status": "superseded"}

    async def registered(self, manifest_uid: str) -> JSON | None:
        master = {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{manifest_uid}"}
        return next((dict(d) for d in self.documents.values()
                     if d["masterIdentifier"] == master), None)

    async def reinstate(self, document: JSON, current: Sequence[JSON]) -> None:
        await self.deprecate(current)
        self.documents[document["id"]] = {**self.documents[document["id"]],
                                          "status": "current"}

    async def provide(self, bundle: JSON) -> ProvideOutcome:
        if self.failures:
            raise self.failures.pop(0)
        self.provided.append(bundle)
        outcome = None
        for entry in bundle["entry"]:
            resource, request = entry["resource"], entry["request"]
            kind = resource["resourceType"]
            if kind == "DocumentReference" and request["method"] == "POST":
                outcome = self._create(resource)
            elif kind == "DocumentReference":  # PUT: the old one superseded
                self.documents[resource["id"]] = resource
            elif kind == "Binary":
                self.binaries[resource["id"]] = base64.b64decode(resource["data"])
        assert outcome is not None
        return outcome

    def _create(self, resource: JSON) -> ProvideOutcome:
        for doc in self.documents.values():  # ifNoneExist on masterIdentifier
            if doc["masterIdentifier"] == resource["masterIdentifier"]:
                return ProvideOutcome(f"DocumentReference/{doc['id']}/_history/1", False)
        doc_id = f"d{len(self.documents) + 1}"
        subject = resource["subject"]["reference"]  # Patient?identifier=system|value
        key = subject.split("identifier=", 1)[1]
        self.documents[doc_id] = {**resource, "id": doc_id, "meta": {"versionId": "1"},
                                  "subject": {"reference": f"Patient/{self.patients[key]}"}}
        return ProvideOutcome(f"DocumentReference/{doc_id}/_history/1", True)


def registry_down() -> FhirBusy:
    return FhirBusy("FHIR server unreachable for mhd-provide: ConnectError")
