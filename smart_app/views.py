"""Routes of the SMART app: ``/smart/launch``, ``/smart/callback``, the imaging history at
``/app/history``, ``/app/viewer`` / ``/app/study/{id}`` that open studies in the viewer, and
``/app/logout``.  Pages are server-rendered (jinja2, autoescaped)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from bridge.smart_metrics import count_error_page
from smart_app.gateway_port import ImagingGateway
from smart_app.history import (
    Banner,
    FhirReadError,
    StudyRow,
    imaging_history,
    patient_banner,
)
from smart_app.launch import LaunchError
from smart_app.raw_sites import add_raw_body_parts
from smart_app.record import dose_period, record_of
from smart_app.service import SmartApp
from smart_app.sessions import Session
from smart_app.viewer import OhifFiles

log = logging.getLogger(__name__)

templates = Environment(loader=PackageLoader("smart_app", "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True,
                        lstrip_blocks=True)
_UID_CHARS = set("0123456789.")
_NO_STORE = {"Cache-Control": "no-store"}
_HISTORY_JS = (Path(__file__).parent / "templates" / "history.js").read_bytes()


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status,
                        headers=_NO_STORE)


def smart_of(request: Request) -> SmartApp:
    app: SmartApp = request.app.state.smart
    return app


def error_page(exc: LaunchError | FhirReadError) -> HTMLResponse:
    """The error page.  The browser's session, if any, is left as it is: every route here
    can be reached by a top-level GET from another site, and only the CSRF-protected
    ``POST /app/logout`` may end a session (RFC 6749 10.12; issue 12 item 7)."""
    said, signed_in = None, False
    if isinstance(exc, LaunchError):
        title, detail, status = exc.title, exc.detail, exc.http_status
        said, signed_in = exc.ehr_description, exc.signed_in
    else:
        title, detail, status = "The EHR did not answer", exc.message, exc.http_status
    # the EHR's description is text anyone can put in a redirect: shown escaped, not logged
    log.warning("smart app error page", extra={"status": status, "error_type": title})
    count_error_page(title, status)
    return render("error.html", status=status, title=title, detail=detail, ehr_said=said,
                  history=signed_in)


@dataclass
class Filters:
    modalities: list[str]
    body_sites: list[str]
    lower: date | None
    upper: date | None
    most_recent: int | None

    @classmethod
    def of(cls, request: Request) -> Filters:
        q = request.query_params
        mods = [m for v in q.getlist("modality") + q.getlist("modalitiesInStudy")
                for m in v.split(",") if m]
        return cls(modalities=mods, body_sites=[v for v in q.getlist("bodysite") if v],
                   lower=_day(q.get("lowerDateTime")), upper=_day(q.get("upperDateTime")),
                   most_recent=int(q["mostRecentResults"])
                   if q.get("mostRecentResults", "").isdigit() else None)

    def keep(self, row: StudyRow) -> bool:
        if self.modalities and not set(self.modalities) & set(row.modalities):
            return False
        if self.body_sites and not set(self.body_sites) & set(row.body_sites):
            return False
        if self.lower and (row.day is None or row.day < self.lower):
            return False
        return not (self.upper and (row.day is None or row.day > self.upper))

    @property
    def active(self) -> bool:
        return bool(self.modalities or self.body_sites or self.lower or self.upper
                    or self.most_recent)


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def timeline(rows: list[StudyRow]) -> dict[str, Any]:
    """Positions (0-100 %) of each dated study on one axis from the first to the last year."""
    dated = [r for r in rows if r.day]
    if not dated:
        return {"marks": [], "years": [], "legend": []}
    first = date(min(r.day.year for r in dated if r.day), 1, 1)
    last = date(max(r.day.year for r in dated if r.day) + 1, 1, 1)
    span = (last - first).days or 1
    marks = [{"x": round(100 * ((r.day - first).days) / span, 2), "row": r,
              "modality": (r.modalities or ["OT"])[0]} for r in dated if r.day]
    years = [{"x": round(100 * (date(y, 1, 1) - first).days / span, 2), "year": y}
             for y in range(first.year, last.year)]
    # the legend: one entry per colour shown (the marks' classes in base.html)
    legend: dict[str, list[str]] = {}
    for modality in (str(m["modality"]) for m in marks):
        colour = _COLOURS.get(modality, "other")
        if modality not in legend.setdefault(colour, []):
            legend[colour].append(modality)
    keys = sorted(legend, key=lambda c: (c == "other", c))
    return {"marks": marks, "years": years,
            "legend": [{"colour": c, "modalities": sorted(legend[c])} for c in keys]}


#: a mark's colour class by modality; any other modality is grey ("other")
_COLOURS = {"CT": "CT", "MR": "MR", "CR": "CR", "DX": "CR", "US": "US", "MG": "MG",
            "PT": "PT", "NM": "PT"}


async def _authenticated(request: Request) -> Session:
    session = await smart_of(request).session_of(request)
    if session is None or not session.authenticated:
        raise LaunchError("Not signed in", "open this app from the EHR (or start a "
                          "standalone launch) first", status=401)
    return session


def smart_routes(viewer: OhifFiles | None = None) -> APIRouter:
    """The app's routes; ``viewer`` (when OHIF is served) is warmed and prefetched from the
    history page."""
    router = APIRouter(tags=["smart-app"])
    prefetch = viewer.prefetch_urls() if viewer is not None else []

    @router.get("/smart/launch")
    async def smart_launch(request: Request, iss: str | None = None,
                           launch: str | None = None) -> Response:
        smart = smart_of(request)
        wait = smart.launch_wait(request)
        if wait:  # before any discovery request or row (issue 12 item 15)
            log.warning("smart launch rate limited", extra={"status": 429,
                                                            "retry_after": wait})
            limited = render("error.html", status=429, title="Too many launches",
                             detail="this browser started too many launches; try again "
                             "in a minute")
            limited.headers["Retry-After"] = str(wait)  # RFC 6585 4
            return limited
        try:
            url, launch_cookie = await smart.begin(iss=iss, launch_id=launch)
        except LaunchError as exc:
            return error_page(exc)
        response = RedirectResponse(url, status_code=302, headers=_NO_STORE)
        smart.set_launch_cookie(response, launch_cookie)
        return response

    @router.get("/smart/callback")
    async def smart_callback(request: Request) -> Response:
        smart = smart_of(request)
        params = {k: v for k, v in request.query_params.items()}
        try:
            session = await smart.finish(request, params)
            target = "/app/history"
            studies = [c for c in session.data.get("fhir_context", [])
                       if c.startswith("ImagingStudy/")]
            if studies:  # SMART 2.2 fhirContext: open the named study directly
                target = f"/app/study/{studies[0].split('/', 1)[1]}"
        except LaunchError as exc:
            return error_page(exc)
        response = RedirectResponse(target, status_code=302, headers=_NO_STORE)
        smart.set_cookie(response, session)
        smart.clear_launch_cookie(response)
        return response

    @router.post("/app/logout")
    async def logout(request: Request) -> Response:
        """Sign out: the tokens are revoked at the EHR (RFC 7009, when its
        smart-configuration names a revocation_endpoint), the server-side session is
        deleted and the cookie cleared.  Cross-site request forgery is refused three ways:
        the cookie is SameSite=Lax (a cross-site POST carries none), the form must carry
        the session's form token, and a browser's ``Sec-Fetch-Site`` must say same-origin
        (which also stops same-site, cross-origin pages, e.g. another port on the host)."""
        smart = smart_of(request)
        session = await smart.session_of(request)
        if session is not None:
            form = await request.form()
            token = form.get("form_token")
            site = request.headers.get("sec-fetch-site", "same-origin")
            if site not in ("same-origin", "none") or not session.check_form_token(
                    token if isinstance(token, str) else None):
                log.warning("smart sign-out refused", extra={"status": 403,
                                                            "error_type": "csrf"})
                # the session stays: a forged request must not sign the user out either
                return render("error.html", status=403, title="Sign-out refused",
                              detail="the request did not come from this app's page",
                              kept=True)
            revoked = await smart.sign_out(session)
        else:
            revoked = None  # no session (expired, or signed out already): nothing to revoke
        response = render("signed_out.html", revoked=revoked, had_session=session is not None)
        smart.clear_cookie(response)
        return response

    @router.get("/app/history.js", include_in_schema=False)
    async def history_script() -> Response:
        return Response(_HISTORY_JS, media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})

    @router.get("/app")
    async def app_root() -> Response:
        return RedirectResponse("/app/history", status_code=302)

    @router.get("/app/history")
    async def history(request: Request) -> Response:
        smart = smart_of(request)
        try:
            session = await _authenticated(request)
            reader = smart.reader(session)
            patient = str(session.data["patient"])
            banner: Banner | None = None
            if session.data.get("need_patient_banner"):
                # one round trip less: the banner and the history are read concurrently
                await smart.access_token(session)  # renew once, before the two reads
                rows, banner = await asyncio.gather(imaging_history(reader, patient),
                                                    patient_banner(reader, patient))
            else:
                rows = await imaging_history(reader, patient)
            gateway: ImagingGateway | None = getattr(request.app.state, "gateway", None)
            if gateway is not None:  # the raw term where the EHR shows no body site
                await add_raw_body_parts(gateway, patient, rows)
            record = await record_of(session.data.get("scope"), reader, patient)  # issue 16
        except (LaunchError, FhirReadError) as exc:
            return error_page(exc)
        filters = Filters.of(request)
        all_modalities = sorted({m for r in rows for m in r.modalities})
        all_sites = sorted({s for r in rows for s in r.body_sites})
        shown = [r for r in rows if filters.keep(r)]
        if filters.most_recent:
            shown = shown[:filters.most_recent]
        years: OrderedDict[str, list[StudyRow]] = OrderedDict()
        for row in shown:
            years.setdefault(row.year, []).append(row)
        if viewer is not None:
            viewer.warm()  # once per process; the user is about to open a study
        return render("history.html", banner=banner, years=years, total=len(rows),
                      shown=len(shown), filters=filters, all_modalities=all_modalities,
                      all_sites=all_sites, timeline=timeline(shown),
                      style_url=session.data.get("smart_style_url"), prefetch=prefetch,
                      form_token=session.form_token, record=record,
                      outside=getattr(request.app.state, "outside", None) is not None,
                      dose=dose_period(record, request.query_params))

    @router.get("/app/viewer")
    async def open_viewer(request: Request) -> Response:
        """Open studies (``StudyInstanceUIDs``, comma list) with a fresh viewer token; the
        token appears only in this redirect, never in a page."""
        smart = smart_of(request)
        try:
            session = await _authenticated(request)
            raw = request.query_params.get("StudyInstanceUIDs", "")
            uids = [u for u in raw.split(",") if u]
            if not uids or any(len(u) > 64 or not set(u) <= _UID_CHARS for u in uids):
                raise LaunchError("Cannot open the viewer", "StudyInstanceUIDs must be a "
                                  "comma list of DICOM UIDs")
            target = await smart.viewer_url(request, session, uids)
        except LaunchError as exc:
            return error_page(exc)
        return RedirectResponse(target, status_code=303, headers=_NO_STORE)

    @router.get("/app/study/{fhir_id}")
    async def open_study(request: Request, fhir_id: str) -> Response:
        """Open an ImagingStudy by FHIR id (the launch's fhirContext)."""
        smart = smart_of(request)
        try:
            session = await _authenticated(request)
            if not fhir_id.replace("-", "").replace(".", "").isalnum() or len(fhir_id) > 64:
                raise LaunchError("Cannot open the study", "not a FHIR id")
            reader = smart.reader(session)
            from smart_app.history import study_row

            study = await reader.get(f"{reader.base}/ImagingStudy/{fhir_id}")
            row = study_row(study)
            if row.uid is None:
                raise LaunchError("Cannot open the study", "the ImagingStudy has no DICOM "
                                  "Study Instance UID", status=404)
            target = await smart.viewer_url(request, session, [row.uid])
        except (LaunchError, FhirReadError) as exc:
            return error_page(exc)
        return RedirectResponse(target, status_code=303, headers=_NO_STORE)

    return router
