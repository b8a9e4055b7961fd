"""In-process test tools for the sync benchmarks: a synthetic DICOMweb archive and a fast
FHIR sink, both served through ``httpx.MockTransport`` (no sockets, no storage).

* :class:`SyntheticArchive` holds ``count`` studies that exist only as arithmetic: study
  ``i`` is dated ``first_day + i // per_day`` and its DICOM JSON is made on demand from one
  of a few template studies of :mod:`samples.generator` (UIDs, PatientID, accession and
  order numbers and dates substituted), so 100,000 studies cost no memory.  It answers QIDO
  ``studies`` (StudyDate range or StudyInstanceUID, ``limit``/``offset``) and WADO-RS
  ``studies/{uid}/metadata``.
* :class:`FastFhirSink` answers FHIR ``batch`` bundles (Patient / ServiceRequest searches:
  always one match; conditional PUT / POST: 201 with the resource echoed back, as HAPI does
  with ``Prefer: return=representation``) and the Endpoint conditional create.  It keeps
  counters only, never the resources.

Both record the CPU time their handlers use (``time.thread_time``: handlers run on the
event loop thread), so a benchmark can subtract the tools' own cost from the process's CPU.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote

import httpx

from samples.generator import generate_studies, instances_json

ARCHIVE_URL = "http://synthetic-archive.invalid/dicom-web"
FHIR_URL = "http://fast-fhir-sink.invalid/fhir"
UID_ROOT = "1.2.826.0.1.3680043.10.999"

_JSON = {"Content-Type": "application/dicom+json"}
_FHIR = {"Content-Type": "application/fhir+json"}


def _q(value: str) -> str:
    return json.dumps(value)


@dataclass(frozen=True)
class _Template:
    text: str  # the instances' DICOM JSON, serialised
    study_uid: str
    series_uids: tuple[str, ...]
    sop_uids: tuple[tuple[int, int, str], ...]  # (series index, instance index, uid)
    patient_id: str
    accession: str
    placer: str | None
    filler: str | None
    study_date: str
    study: dict[str, Any]  # QIDO study-level record (includefield attributes)


class _Timed:
    """Accumulates the handler's own CPU time."""

    cpu_seconds: float

    def _timed(self, fn: Callable[[httpx.Request], httpx.Response]
               ) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            started = time.thread_time()
            try:
                return fn(request)
            finally:
                self.cpu_seconds += time.thread_time() - started
        return handler


class SyntheticArchive(_Timed):
    """``count`` studies, ``per_day`` a day, the last one dated ``last_day``."""

    def __init__(self, count: int, *, per_day: int = 100, last_day: date | None = None,
                 seed: int = 1, templates: int = 16, profile: str = "small",
                 patients: int | None = None) -> None:
        self.count = count
        self.per_day = per_day
        self.last_day = last_day or date.today()
        self.first_day = self.last_day - timedelta(days=max(0, count - 1) // per_day)
        self.seed = seed
        self.patients = patients or max(1, count // 4)
        self.prefix = f"{UID_ROOT}.{seed}."
        self.requests: Counter[str] = Counter()
        self.cpu_seconds = 0.0
        self._templates = [self._template(s) for s in
                           generate_studies(templates, seed=seed, profile=profile,
                                            id_prefix="SYN")]

    # --- the studies ------------------------------------------------------------------------

    @staticmethod
    def _template(study: Any) -> _Template:
        t = study.truth
        instances = instances_json(study)
        series_uids = tuple(s.series_uid for s in t.series)
        sops = []
        for ds in instances:
            series = series_uids.index(ds["0020000E"]["Value"][0])
            sops.append((series, len([s for s in sops if s[0] == series]),
                         ds["00080018"]["Value"][0]))
        first = instances[0]
        study_rec = {tag: first[tag] for tag in
                     ("00080020", "00080030", "00080050", "00081030", "00100020", "0020000D")
                     if tag in first}
        study_rec["00080061"] = {"vr": "CS", "Value": sorted(set(t.modalities))}
        study_rec["00201206"] = {"vr": "IS", "Value": [t.series_count]}
        study_rec["00201208"] = {"vr": "IS", "Value": [t.instance_count]}
        return _Template(json.dumps(instances), t.study_uid, series_uids, tuple(sops),
                         t.patient_id, t.accession_number, t.placer_order_number,
                         t.filler_order_number, t.study_date, study_rec)

    def uid(self, index: int) -> str:
        return f"{self.prefix}{index}"

    def index_of(self, uid: str) -> int | None:
        if not uid.startswith(self.prefix):
            return None
        try:
            index = int(uid[len(self.prefix):])
        except ValueError:
            return None
        return index if 0 <= index < self.count else None

    def date_of(self, index: int) -> date:
        return self.first_day + timedelta(days=index // self.per_day)

    def _values(self, index: int) -> tuple[_Template, dict[str, str]]:
        tpl = self._templates[index % len(self._templates)]
        uid = self.uid(index)
        subst = {
            tpl.study_uid: uid,
            tpl.patient_id: f"SYN{(index * 7919) % self.patients:07d}",
            tpl.accession: f"SA{self.seed}X{index:08d}",
            tpl.study_date: f"{self.date_of(index):%Y%m%d}",
        }
        if tpl.placer:
            subst[tpl.placer] = f"SP{self.seed}X{index:08d}"
        if tpl.filler:
            subst[tpl.filler] = f"SF{self.seed}X{index:08d}"
        for k, series in enumerate(tpl.series_uids):
            subst[series] = f"{uid}.{k + 1}"
        for k, n, sop in tpl.sop_uids:
            subst[sop] = f"{uid}.{k + 1}.{n + 1}"
        return tpl, subst

    def study_record(self, index: int) -> dict[str, Any]:
        """The QIDO study-level record of study ``index``."""
        tpl, subst = self._values(index)
        rec = dict(tpl.study)
        for tag in ("00080020", "00080050", "00100020", "0020000D"):
            el = rec.get(tag)
            if el and el.get("Value"):
                rec[tag] = {**el, "Value": [subst.get(v, v) for v in el["Value"]]}
        return rec

    def metadata(self, index: int) -> bytes:
        """WADO-RS metadata of study ``index`` (DICOM JSON, PS3.18 F.2)."""
        tpl, subst = self._values(index)
        text = tpl.text
        for old, new in subst.items():
            text = text.replace(_q(old), _q(new))
        return text.encode()

    def index_range(self, start: date, end: date) -> range:
        lo = max(0, (start - self.first_day).days * self.per_day)
        hi = min(self.count, ((end - self.first_day).days + 1) * self.per_day)
        return range(lo, max(lo, hi))

    # --- HTTP -------------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._timed(self._handle))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.split("/dicom-web/", 1)[-1].strip("/")
        parts = path.split("/")
        if parts == ["studies"]:
            self.requests["qido-studies"] += 1
            return self._search(request.url.params)
        if len(parts) == 3 and parts[0] == "studies" and parts[2] == "metadata":
            self.requests["wado-metadata"] += 1
            index = self.index_of(parts[1])
            if index is None:
                return httpx.Response(404)
            return httpx.Response(200, content=self.metadata(index), headers=_JSON)
        self.requests["other"] += 1
        return httpx.Response(404)

    def _search(self, params: httpx.QueryParams) -> httpx.Response:
        uid = params.get("StudyInstanceUID")
        if uid is not None:
            index = self.index_of(uid)
            found: range | list[int] = [] if index is None else [index]
        else:
            span = params.get("StudyDate")
            if span:
                a, sep, b = span.partition("-")
                start = _parse_da(a) if a else self.first_day
                end = _parse_da(b) if b else (self.last_day if sep else start)
                found = self.index_range(start, end)
            else:
                found = range(self.count)
        offset = int(params.get("offset", 0))
        limit = params.get("limit")
        page = found[offset:offset + int(limit)] if limit else found[offset:]
        if not page:
            return httpx.Response(204)
        body = json.dumps([self.study_record(i) for i in page]).encode()
        return httpx.Response(200, content=body, headers=_JSON)


def _parse_da(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


class FastFhirSink(_Timed):
    """A FHIR server that says yes quickly and remembers only counts."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.entries: Counter[str] = Counter()
        self.cpu_seconds = 0.0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._timed(self._handle))

    @staticmethod
    def _id(prefix: str, key: str) -> str:
        return f"{prefix}{zlib.crc32(key.encode()):08x}"

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.split("/fhir", 1)[-1].strip("/")
        if request.method == "POST" and path == "":
            self.requests["batch"] += 1
            bundle = json.loads(request.content)
            entries = [self._entry(e) for e in bundle.get("entry", [])]
            body = {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
            return httpx.Response(200, content=json.dumps(body).encode(), headers=_FHIR)
        if request.method == "POST" and path == "Endpoint":
            self.requests["create-endpoint"] += 1
            resource = {**json.loads(request.content), "id": "ep1",
                        "meta": {"versionId": "1"}}
            return httpx.Response(201, content=json.dumps(resource).encode(), headers={
                **_FHIR, "Location": f"{FHIR_URL}/Endpoint/ep1/_history/1"})
        if path == "metadata":
            self.requests["metadata"] += 1
            return httpx.Response(200, json={"resourceType": "CapabilityStatement"})
        self.requests[f"other {request.method}"] += 1
        return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})

    def _entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        req = entry.get("request", {})
        method, url = req.get("method", ""), req.get("url", "")
        rtype, _, query = url.partition("?")
        self.entries[f"{method} {rtype}"] += 1
        if method == "GET":
            ident = ""
            for pair in query.split("&"):
                if pair.startswith("identifier="):
                    ident = unquote(pair[len("identifier="):])
            # identifier=a|x,b|y is an OR-search: every value matches one resource
            found = []
            for one in ident.split(","):
                system, _, value = one.partition("|")
                found.append({"resource": {"resourceType": rtype,
                                           "id": self._id(rtype[:2].lower(), one),
                                           "identifier": [{"system": system, "value": value}]},
                              "search": {"mode": "match"}})
            return {"resource": {"resourceType": "Bundle", "type": "searchset",
                                 "total": len(found), "entry": found},
                    "response": {"status": "200 OK"}}
        if method in ("PUT", "POST"):
            resource = dict(entry.get("resource") or {})
            rid = self._id(rtype[:2].lower(), query or json.dumps(resource.get("identifier")))
            resource["id"] = rid
            resource["meta"] = {**(resource.get("meta") or {}), "versionId": "1"}
            return {"resource": resource,
                    "response": {"status": "201 Created", "etag": 'W/"1"',
                                 "location": f"{rtype}/{rid}/_history/1"}}
        return {"response": {"status": "400 Bad Request"}}
