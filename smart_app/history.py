"""The patient's longitudinal imaging history from the EHR's FHIR server (R4).

``GET {iss}/ImagingStudy?patient=X&_sort=-started&_include=ImagingStudy:endpoint``, every
page (Endpoint is not in the patient compartment, hence ``_include``; SMART 2.2), and
``GET {iss}/Patient/X`` for the banner.  Paging follows the server's ``next`` links only
when they stay under ``iss``: a token is never sent anywhere else (SMART 2.2 security).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import httpx

from bridge.errors import Permanent

log = logging.getLogger(__name__)

DICOM_UID_SYSTEM = "urn:dicom:uid"
ACSN = "ACSN"
PAGE_SIZE = 200
MAX_PAGES = 200  # 40,000 studies: a guard against a server whose next links loop

#: ``token(force)``: the session's current access token; force=True renews it first
TokenSource = Callable[[bool], Awaitable[str]]


class FhirReadError(Permanent):
    """The EHR did not answer a read; ``http_status`` (the ``status`` given) is the HTTP
    status the page is shown with (401 = sign in).  Permanent for the request: the page says
    so and the user decides whether to try again."""

    kind = "fhir-read"

    def __init__(self, message: str, *, status: int = 502) -> None:
        super().__init__(message)
        self.http_status: int = status


@dataclass(frozen=True, slots=True)
class Banner:
    """SMART 2.2 ``need_patient_banner``: what identifies the patient on screen."""

    name: str
    birth_date: str | None
    sex: str | None
    identifier: str | None


@dataclass(slots=True)
class StudyRow:
    fhir_id: str
    uid: str | None
    started: datetime | None
    day: date | None
    modalities: list[str] = field(default_factory=list)
    body_sites: list[str] = field(default_factory=list)
    description: str | None = None
    series_count: int | None = None
    instance_count: int | None = None
    accession: str | None = None
    status: str | None = None
    #: ImagingStudy.reasonCode (text, else display or code) and reasonReference (display,
    #: else the reference)
    reasons: list[str] = field(default_factory=list)
    #: ImagingStudy.referrer (display, else the reference)
    referrer: str | None = None
    #: series of the resource without a bodySite (the mapping leaves an unknown Body Part
    #: Examined term out): the history looks their raw term up in the archive
    unsited_series: list[str] = field(default_factory=list)
    #: body_sites that are raw DICOM terms, not codes the mapping knew
    raw_sites: list[str] = field(default_factory=list)

    @property
    def year(self) -> str:
        return str(self.day.year) if self.day else "Date unknown"


class FhirReader:
    """GETs against one FHIR base with the session's bearer token (renewed once on 401)."""

    def __init__(self, client: httpx.AsyncClient, base: str, token: TokenSource) -> None:
        self._client = client
        self.base = base.rstrip("/")
        self._token = token

    async def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        if not (url == self.base or url.startswith((self.base + "/", self.base + "?"))):
            raise FhirReadError("the FHIR server pointed outside its own base")
        for attempt in (0, 1):
            token = await self._token(attempt == 1)
            try:
                resp = await self._client.get(url, params=params, headers={
                    "Authorization": f"Bearer {token}", "Accept": "application/fhir+json"})
            except httpx.HTTPError as exc:
                raise FhirReadError(f"the EHR's FHIR server is not reachable "
                                    f"({type(exc).__name__})") from exc
            if resp.status_code == 401 and attempt == 0:
                continue
            if resp.status_code == 401:
                raise FhirReadError("the EHR no longer accepts this session", status=401)
            if resp.status_code == 403:
                raise FhirReadError("the EHR refused access (scope or patient)", status=403)
            if resp.status_code != 200:
                raise FhirReadError(f"the EHR's FHIR server answered HTTP {resp.status_code}")
            body: dict[str, Any] = resp.json()
            return body
        raise AssertionError("unreachable")

    async def search_all(self, resource: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every entry of every page (match and include), in server order."""
        entries: list[dict[str, Any]] = []
        bundle = await self.get(f"{self.base}/{resource}", params)
        for _ in range(MAX_PAGES):
            entries += [e for e in bundle.get("entry", []) if isinstance(e, dict)]
            nxt = [lnk.get("url") for lnk in bundle.get("link", [])
                   if lnk.get("relation") == "next"]
            if not nxt or not isinstance(nxt[0], str):
                return entries
            bundle = await self.get(nxt[0])
        raise FhirReadError("the FHIR server returned too many pages")


def _parse_started(value: Any) -> tuple[datetime | None, date | None]:
    if not isinstance(value, str) or len(value) < 4:
        return None, None
    try:
        if len(value) <= 10:
            parts = [int(p) for p in value.split("-")] + [1, 1]
            day = date(parts[0], parts[1], parts[2])
            return None, day
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment, moment.date()
    except ValueError:
        return None, None


def _label(coding: Any) -> str | None:
    if not isinstance(coding, dict):
        return None
    value = coding.get("display") or coding.get("code")
    return str(value) if value else None


def _concept(concept: Any) -> str | None:
    """A CodeableConcept as one label: its text, else its first coding's display or code."""
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        label = _label(coding)
        if label:
            return label
    return None


def _reference(ref: Any) -> str | None:
    """A Reference as a label: its display, else the reference itself."""
    if not isinstance(ref, dict):
        return None
    value = ref.get("display") or ref.get("reference")
    return str(value) if value else None


def _reasons(study: dict[str, Any]) -> list[str]:
    found = [_concept(c) for c in study.get("reasonCode") or []]
    found += [_reference(r) for r in study.get("reasonReference") or []]
    return list(dict.fromkeys(r for r in found if r))


def _accession(study: dict[str, Any]) -> str | None:
    candidates = [*study.get("identifier", []),
                  *[b.get("identifier", {}) for b in study.get("basedOn", [])]]
    for ident in candidates:
        codes = [c.get("code") for c in (ident.get("type") or {}).get("coding", [])]
        if ACSN in codes and ident.get("value"):
            return str(ident["value"])
    return None


def _uid(study: dict[str, Any]) -> str | None:
    for ident in study.get("identifier", []):
        if ident.get("system") == DICOM_UID_SYSTEM and isinstance(ident.get("value"), str):
            value: str = ident["value"]
            return value.removeprefix("urn:oid:")
    return None


def study_row(study: dict[str, Any]) -> StudyRow:
    started, day = _parse_started(study.get("started"))
    series = [s for s in study.get("series", []) if isinstance(s, dict)]
    modalities = [c.get("code") for c in study.get("modality", []) if c.get("code")]
    for s in series:
        code = (s.get("modality") or {}).get("code")
        if code and code not in modalities:
            modalities.append(code)
    sites: list[str] = []
    unsited: list[str] = []
    for s in series:
        label = _label(s.get("bodySite"))
        if label and label not in sites:
            sites.append(label)
        elif not label and isinstance(s.get("uid"), str):
            unsited.append(s["uid"])
    return StudyRow(
        fhir_id=str(study.get("id", "")), uid=_uid(study), started=started, day=day,
        modalities=[str(m) for m in modalities], body_sites=sites,
        description=study.get("description"),
        series_count=study.get("numberOfSeries", len(series) or None),
        instance_count=study.get("numberOfInstances"),
        accession=_accession(study), status=study.get("status"),
        reasons=_reasons(study), referrer=_reference(study.get("referrer")),
        unsited_series=unsited,
    )


def _patient_id(patient: str) -> str:
    return patient.removeprefix("Patient/")


async def imaging_history(reader: FhirReader, patient: str) -> list[StudyRow]:
    """The patient's studies, newest first (entered-in-error ones left out)."""
    entries = await reader.search_all("ImagingStudy", {
        "patient": _patient_id(patient), "_sort": "-started",
        "_include": "ImagingStudy:endpoint", "_count": str(PAGE_SIZE)})
    rows = [study_row(e["resource"]) for e in entries
            if (e.get("resource") or {}).get("resourceType") == "ImagingStudy"
            and (e.get("search") or {}).get("mode", "match") == "match"]
    rows = [r for r in rows if r.status != "entered-in-error"]
    # servers may sort date-only and date-time values apart: order once more here
    rows.sort(key=lambda r: (r.day or date.min, r.started.isoformat() if r.started else ""),
              reverse=True)
    return rows


async def patient_banner(reader: FhirReader, patient: str) -> Banner:
    body = await reader.get(f"{reader.base}/Patient/{_patient_id(patient)}")
    names = body.get("name") or [{}]
    name = names[0]
    text = name.get("text") or " ".join(
        [*name.get("given", []), name.get("family", "")]).strip() or "(no name)"
    ident = None
    for i in body.get("identifier", []):
        if i.get("value"):
            codes = [c.get("code") for c in (i.get("type") or {}).get("coding", [])]
            ident = str(i["value"])
            if "MR" in codes:
                break
    return Banner(name=str(text), birth_date=body.get("birthDate"), sex=body.get("gender"),
                  identifier=ident)
