"""The Imaging Document Source at the document recipient (I/O): the reads a publication
needs before its ITI-65, and the ITI-65 itself with the registry's refusals named.

* :meth:`SourceRegistry.patient`: the affinity-domain Patient the document's ``subject``
  refers to.  The registry must hold it before anything is registered (the conditional
  reference of the bundle fails otherwise, HAPI-1091 404): none yet is
  :class:`~bridge.errors.PatientNotFound`, a wait and not a failure, like the sync's.
* :meth:`SourceRegistry.current_manifests`: the current KOS manifests this registry holds
  for one study of that patient (``DocumentReference?subject=&status=current&format=``,
  then ``context.related`` = the Study Instance UID), i.e. what a new manifest replaces.
* :meth:`SourceRegistry.provide`: ITI-65 (:func:`bridge.sharing.publish.provide`); a 4xx
  other than a concurrent change becomes :class:`~bridge.sharing.errors.RegistryRejected`
  naming the element the registry pointed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from bridge.errors import FhirBusy, FhirRejected, PatientNotFound
from bridge.fhir.client import FhirClient
from bridge.jsonbytes import loads
from bridge.sharing.errors import RegistryRejected
from bridge.sharing.kos import KOS_SOP_CLASS
from bridge.sharing.mhd import (
    DCMUID,
    DICOM_UID_SYSTEM,
    master_identifier,
    reinstate_entry,
    supersede_entry,
)
from bridge.sharing.publish import ProvideOutcome, provide

JSON = dict[str, Any]

#: current manifests of one study asked for in one page (normally one; more only when
#: another source registered the same study)
MAX_CURRENT = 50

#: HAPI's parser names the element it refused as ``[element="date"]`` (HAPI-1821 and kin)
_HAPI_ELEMENT = re.compile(r'\[element="([^"]+)"\]')


def rejected_field(outcome: Mapping[str, Any] | None) -> str | None:
    """The element an OperationOutcome points at: ``issue.expression`` (R4 4.4.1, the
    FHIRPath), else ``issue.location``, else the element HAPI names in its diagnostics."""
    for issue in (outcome or {}).get("issue") or []:
        if not isinstance(issue, dict):
            continue
        for key in ("expression", "location"):
            found = issue.get(key) or []
            if found and isinstance(found[0], str):
                return found[0]
        named = _HAPI_ELEMENT.search(str(issue.get("diagnostics") or ""))
        if named:
            return named.group(1)
    return None


def _related_study(document: JSON) -> set[str]:
    related = (document.get("context") or {}).get("related") or []
    return {str(r["identifier"].get("value")) for r in related
            if isinstance(r, dict) and isinstance(r.get("identifier"), dict)
            and r["identifier"].get("system") == DICOM_UID_SYSTEM}


class SourceRegistry:
    """The document recipient as the source sees it, through a FhirClient of the
    registry's own settings (not the EHR's)."""

    def __init__(self, fhir: FhirClient) -> None:
        self.fhir = fhir
        self.base_url = fhir.base_url

    async def patient(self, identifier: Mapping[str, str], *, create: bool = False) -> str:
        """``Patient/<id>`` of the affinity-domain patient ``identifier``; raises
        PatientNotFound while the registry has none (the message names the system only:
        the identifier's value is the patient's), unless ``create``: then a Patient with
        that identifier alone (no demographics) is created, conditionally (R4 3.1.0.8
        If-None-Exist), so two sources never make two."""
        params = {"identifier": f"{identifier['system']}|{identifier['value']}",
                  "_elements": "id"}
        resp = await self.fhir.request("GET", "Patient", params=params,
                                       headers={"Cache-Control": "no-cache"},
                                       interaction="mhd-source-patient")
        bundle = loads(resp.content)
        ids = [str(e["resource"]["id"]) for e in bundle.get("entry") or []
               if (e.get("resource") or {}).get("resourceType") == "Patient"]
        if not ids and create:
            return await self._create_patient(identifier)
        if not ids:
            raise PatientNotFound(
                "the document registry has no Patient with an identifier of the affinity "
                f"domain's system {identifier['system']} for this study's patient yet (the "
                "manifest's subject refers to it)")
        return f"Patient/{ids[0]}"

    async def _create_patient(self, identifier: Mapping[str, str]) -> str:
        query = f"identifier={identifier['system']}|{identifier['value']}"
        resp = await self.fhir.request(
            "POST", "Patient", interaction="mhd-source-patient-create",
            json={"resourceType": "Patient", "identifier": [dict(identifier)]},
            headers={"If-None-Exist": query, "Prefer": "return=minimal"})
        # the Location (created) or Content-Location (found) names it: Patient/<id>/...
        where = resp.headers.get("location") or resp.headers.get("content-location") or ""
        parts = httpx.URL(where).path.split("/") if where else []
        if "Patient" in parts and parts.index("Patient") + 1 < len(parts):
            return f"Patient/{parts[parts.index('Patient') + 1]}"
        body = loads(resp.content) if resp.content else {}
        if body.get("resourceType") == "Patient" and body.get("id"):
            return f"Patient/{body['id']}"
        raise FhirBusy("the registry's answer to the Patient create names no Patient")

    async def current_manifests(self, patient: str, study_uid: str) -> list[JSON]:
        """Current KOS DocumentReferences of ``patient`` whose ``context.related`` names
        ``study_uid``."""
        params = [("subject", patient), ("status", "current"),
                  ("format", f"{DCMUID}|{KOS_SOP_CLASS}"), ("_count", str(MAX_CURRENT))]
        # no-cache: a server may answer a repeated search from a cache (HAPI keeps results
        # a minute), which could show a manifest superseded seconds ago as still current
        resp = await self.fhir.request("GET", "DocumentReference", params=params,
                                       headers={"Cache-Control": "no-cache"},
                                       interaction="mhd-source-find")
        wanted = f"urn:oid:{study_uid}"
        return [r for e in loads(resp.content).get("entry") or []
                if (r := e.get("resource") or {}).get("resourceType") == "DocumentReference"
                and wanted in _related_study(r)]

    async def registered(self, manifest_uid: str) -> JSON | None:
        """The DocumentReference registered for the manifest ``manifest_uid`` (its
        masterIdentifier; R4's ``identifier`` search covers it), whatever its status."""
        master = master_identifier(manifest_uid)
        resp = await self.fhir.request(
            "GET", "DocumentReference", interaction="mhd-source-find",
            params={"identifier": f"{master['system']}|{master['value']}"},
            headers={"Cache-Control": "no-cache"})
        found = [r for e in loads(resp.content).get("entry") or []
                 if (r := e.get("resource") or {}).get("resourceType") == "DocumentReference"]
        return found[0] if found else None

    async def reinstate(self, document: JSON, current: Sequence[JSON]) -> None:
        """Make ``document`` current again and ``current`` superseded, in one transaction
        (the study is back to the content ``document`` describes)."""
        bundle = {"resourceType": "Bundle", "type": "transaction",
                  "entry": [reinstate_entry(document), *map(supersede_entry, current)]}
        await self.fhir.request("POST", "", json=bundle, interaction="mhd-reinstate")

    async def deprecate(self, documents: Sequence[JSON]) -> None:
        """Mark ``documents`` superseded in one transaction (XDS Deprecated), each
        guarded by its version (a concurrent change is a 412 Conflict, retried)."""
        if documents:
            bundle = {"resourceType": "Bundle", "type": "transaction",
                      "entry": [supersede_entry(d) for d in documents]}
            await self.fhir.request("POST", "", json=bundle, interaction="mhd-deprecate")

    async def provide(self, bundle: JSON) -> ProvideOutcome:
        """ITI-65; a refusal (4xx, not 409/412) is RegistryRejected naming the field."""
        try:
            return await provide(self.fhir, bundle)
        except FhirRejected as exc:
            field = rejected_field(exc.operation_outcome)
            where = f" at {field}" if field else ""
            raise RegistryRejected(
                f"the document registry refused the ITI-65 bundle{where}: {exc.message}",
                field=field, status_code=exc.status_code) from exc
