"""IHE Invoke Image Display (RAD-106): ``GET /IHEInvokeImageDisplay``.

IHE RAD TF-2 4.106 (IID): ``requestType=STUDY`` with ``studyUID`` and/or
``accessionNumber`` (comma lists), or ``requestType=PATIENT`` with ``patientID`` (an HL7
CX, ``value^^^authority``) and optional ``lowerDateTime``, ``upperDateTime``,
``mostRecentResults``, ``modalitiesInStudy``; display options ``viewerType``,
``diagnosticQuality``, ``keyImagesOnly`` are accepted.  ``patientName`` and
``patientBirthDate`` are accepted and ignored (the identifier decides).

IID defines no security, so an authenticated session is required: a bearer token (as for
``/dicom-web``) or the session the SMART app resolves through
:attr:`Gateway.session_resolver` (its launch session cookie).  A patient-context session
may only open its patient's images (403 otherwise).

Answers: 303 to the viewer (STUDY: ``gateway.viewer_url_template`` with the study UIDs and
the OHIF data-source path of the archive holding the first study) or to the app's history
page (PATIENT: ``gateway.history_url`` with the filters); 400 naming the bad or missing
parameter; 401 without a session.  A STUDY request naming a study the session may not open
is answered 403 with one fixed body, whether the study is another patient's or exists
nowhere (issue 12 item 9: no existence oracle for study UIDs or accession numbers, as the
gateway answers for ``/dicom-web``, SMART Imaging Access); only a system session, which may
see every study, gets 404 for a study no archive has.  Studies are looked for
in every archive behind the gateway, the default one first; OHIF shows one data source at
a time, so the studies of one request should be in one archive.  Redirect targets are local
paths from the settings (no open redirect).  Each answer is counted (route kind ``iid``)
and its decision, with the session and the studies, goes to the audit trail.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from bridge.errors import BridgeError
from bridge.gateway.archives import ArchiveRoute
from bridge.gateway.compartment import PATIENT_FIELDS, PatientKey
from bridge.gateway.errors import BadRequest, Forbidden, InvalidToken, NotFound
from bridge.gateway.observe import Seen
from bridge.gateway.paths import uid as check_uid
from bridge.gateway.routes import gateway_of, http_error
from bridge.gateway.scopes import Need
from bridge.gateway.service import Gateway
from bridge.gateway.tokens import TokenInfo
from bridge.mapping.peek import first_str as first_value
from bridge.mapping.tags import STUDY_INSTANCE_UID as STUDY_UID

_CS = re.compile(r"^[A-Z0-9_ ]{1,16}$")
_ACCESSION = re.compile(r"^[^*?\\,^]{1,64}$")
_BOOL = ("true", "false")
STUDY, PATIENT = "STUDY", "PATIENT"


def _bad(parameter: str, problem: str) -> BadRequest:
    return BadRequest(f"parameter {parameter!r}: {problem}", parameter=parameter)


def _list(query: dict[str, str], name: str) -> list[str]:
    raw = query.get(name)
    if raw is None:
        return []
    items = [v.strip() for v in raw.split(",")]
    if not all(items):
        raise _bad(name, "empty item in the comma list")
    return items


def _datetime(query: dict[str, str], name: str) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:  # xs:dateTime, e.g. 2010-01-01T00:00:00 (RAD-106 uses the XML Schema form)
        datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad(name, "not an ISO 8601 / xs:dateTime value") from exc
    return raw


def parse_query(query: dict[str, str]) -> dict[str, Any]:
    """Validate the RAD-106 parameters; raise :class:`BadRequest` naming the parameter."""
    request_type = query.get("requestType")
    if request_type is None:
        raise _bad("requestType", "missing (STUDY or PATIENT)")
    if request_type not in (STUDY, PATIENT):
        raise _bad("requestType", "must be STUDY or PATIENT")
    for name in ("diagnosticQuality", "keyImagesOnly"):
        if name in query and query[name] not in _BOOL:
            raise _bad(name, "must be true or false")
    if "viewerType" in query and not _CS.match(query["viewerType"]):
        raise _bad("viewerType", "not a viewer type code such as IHE_BIR")
    out: dict[str, Any] = {"requestType": request_type}
    if request_type == STUDY:
        uids = _list(query, "studyUID")
        for value in uids:
            try:
                check_uid(value)
            except BadRequest as exc:
                raise _bad("studyUID", f"{value[:70]!r} is not a DICOM UID") from exc
        accessions = _list(query, "accessionNumber")
        for value in accessions:
            if not _ACCESSION.match(value):
                raise _bad("accessionNumber", "not an exact accession number")
        if not uids and not accessions:
            raise _bad("studyUID", "STUDY needs studyUID and/or accessionNumber")
        out.update(studyUID=uids, accessionNumber=accessions)
        return out
    cx = query.get("patientID")
    if not cx:
        raise _bad("patientID", "PATIENT needs patientID (CX, e.g. 123^^^HOSP)")
    parts = cx.split("^")
    if not parts[0] or len(parts) > 10:
        raise _bad("patientID", "not an HL7 CX value^^^authority")
    authority = parts[3] if len(parts) > 3 else ""
    out["patientID"] = (parts[0], authority)
    out["lowerDateTime"] = _datetime(query, "lowerDateTime")
    out["upperDateTime"] = _datetime(query, "upperDateTime")
    recent = query.get("mostRecentResults")
    if recent is not None and (not recent.isdigit() or int(recent) < 1):
        raise _bad("mostRecentResults", "must be a positive integer")
    out["mostRecentResults"] = recent
    modalities = _list(query, "modalitiesInStudy")
    if any(not _CS.match(m) for m in modalities):
        raise _bad("modalitiesInStudy", "not a list of modality codes")
    out["modalitiesInStudy"] = modalities
    return out


async def session_of(gateway: Gateway, request: Request) -> TokenInfo:
    """The authenticated session: a bearer token, else the SMART app's session hook."""
    if request.headers.get("authorization"):
        return await gateway.authenticate(request)
    if gateway.session_resolver is not None:
        info = await gateway.session_resolver(request)
        if info is not None:
            return info
    raise InvalidToken("IHE IID needs an authenticated session (launch the app first)")


def _unavailable(ids: frozenset[PatientKey] | None) -> BridgeError:
    """The one answer for a requested study the session cannot open.  For a patient
    session, "another patient's" and "nowhere" are the same 403 (never naming the value):
    anything else would let a launched user enumerate the archive."""
    if ids is None:  # a system session may see every study: nothing to hide
        return NotFound("no study matches the requested study UID or accession number")
    return Forbidden("no study of the session's patient matches the requested study UID "
                     "or accession number")


async def _patients_studies(gateway: Gateway, uids: list[str], accessions: list[str],
                            ids: frozenset[PatientKey] | None) -> dict[str, ArchiveRoute]:
    """Each requested study (by UID, then by accession number) with the archive that holds
    it as the patient's; :func:`_unavailable` when one UID or accession number names none.
    Another patient's study costs the same look-ups as a missing one: the compartment is
    checked on the same QIDO answer that finds the study."""
    found: dict[str, ArchiveRoute] = {}
    for uid in dict.fromkeys(uids):
        route = await gateway.archives.holding(uid, ids)
        if route is None:
            raise _unavailable(ids)
        found[uid] = route
    for accession in accessions:
        matched = False
        for route in gateway.archives:
            rows = await route.proxy.qido_json("studies", [
                ("AccessionNumber", accession),
                *(("includefield", f) for f in PATIENT_FIELDS)])
            for row in rows:
                study = first_value(row, STUDY_UID)
                if study is None or (ids is not None
                                     and await route.compartment.row_patient(row) not in ids):
                    continue
                matched = True
                found.setdefault(study, route)
        if not matched:
            raise _unavailable(ids)
    return found


async def invoke(gateway: Gateway, request: Request, seen: Seen | None = None) -> Response:
    """Answer RAD-106; ``seen`` learns the session and the studies (for the audit)."""
    seen = seen or Seen(None, request, source="iid", kind="iid")
    query = dict(request.query_params)
    session = seen.token = await session_of(gateway, request)
    params = parse_query(query)
    seen.studies = tuple(params.get("studyUID", ()))
    ids = await gateway.patient_ids(session, Need.READ)
    settings = gateway.settings
    if params["requestType"] == STUDY:
        studies = await _patients_studies(gateway, params["studyUID"],
                                          params["accessionNumber"], ids)
        seen.studies = tuple(studies)
        first = next(iter(studies.values()))
        target = settings.viewer_url_template.format(
            study_uids=quote(",".join(studies), safe=","),
            data_source_path=first.data_source_path)
        return RedirectResponse(target, status_code=303)
    value, authority = params["patientID"]
    dataset: dict[str, Any] = {"00100020": {"vr": "LO", "Value": [value]}}
    namespace, _, rest = authority.partition("&")
    universal, _, universal_type = rest.partition("&")
    if namespace:
        dataset["00100021"] = {"vr": "LO", "Value": [namespace]}
    if universal:
        dataset["00100024"] = {"vr": "SQ", "Value": [{
            "00400032": {"vr": "UT", "Value": [universal]},
            "00400033": {"vr": "CS", "Value": [universal_type or "ISO"]}}]}
    key = gateway.mapper.key_of(dataset)
    if key is None:
        raise BadRequest("parameter 'patientID': no usable identifier", parameter="patientID")
    if ids is not None and key not in ids:
        raise Forbidden("the session's patient is not the requested patient")
    filters = [("patient", f"{key[0]}|{key[1]}")]
    for name in ("lowerDateTime", "upperDateTime", "mostRecentResults"):
        if params[name] is not None:
            filters.append((name, params[name]))
    if params["modalitiesInStudy"]:
        filters.append(("modalitiesInStudy", ",".join(params["modalitiesInStudy"])))
    return RedirectResponse(f"{settings.history_url}?{urlencode(filters)}", status_code=303)


def iid_router() -> APIRouter:
    router = APIRouter(tags=["ihe-iid"])

    @router.get("/IHEInvokeImageDisplay")
    async def invoke_image_display(request: Request) -> Response:
        gateway = gateway_of(request)
        seen = Seen(gateway.audit, request, source="iid", kind="iid")  # metrics, audit
        try:
            return seen.permitted(await invoke(gateway, request, seen))
        except BadRequest as exc:
            seen.refused(exc, 400)
            raise HTTPException(400, exc.message) from exc
        except BridgeError as exc:
            error = http_error(exc, token_present=bool(request.headers.get("authorization")))
            seen.refused(exc, error.status_code)
            raise error from exc

    return router
