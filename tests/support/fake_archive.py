"""An in-process DICOMweb archive (PS3.18): studies held as DICOM JSON in memory, answered
through two faces over the same state.

* :meth:`FakeArchive.handler`: an ``httpx.MockTransport`` handler, for the bridge's
  archive client (no socket).
* :meth:`FakeArchive.handle`: an ``aiohttp.web`` handler, for clients that need a real
  socket (the gateway's byte pump); :meth:`FakeArchive.serve` runs it on a loopback port
  in the running event loop.

What it answers: a QIDO-RS search by StudyInstanceUID (PS3.18 10.6) lists the study's
patients from :attr:`patients_of`; any other study search lists :attr:`instances` (the
first instance of each study as its row), matched on a StudyDate range as a conformant
server does (only valid dates match a range, PS3.4 C.2.2.2.5) and paged with
``limit``/``offset`` (PS3.18 8.3.4.4); WADO-RS metadata (PS3.18 10.4) of
:attr:`instances`;
any other path (frames, bulk data) :attr:`bulk`.  Faults are data: :attr:`gone` (404),
:attr:`down` (503) per study, :attr:`fail_next` (503 for the next N requests),
:attr:`status` for every request, and :attr:`accept_tokens` (a bearer token not in it is
refused with 401, RFC 6750 3.1).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from aiohttp import web

from samples.generator import GeneratedStudy, instances_json
from tests.support.ports import free_port


def _study_date(row: dict[str, Any]) -> str:
    value: list[str] = row.get("00080020", {}).get("Value") or [""]
    return value[0]


def _valid_date(text: str) -> date | None:
    """A DA value (PS3.5 6.2, ``YYYYMMDD``) as a date; None for anything else."""
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 else None
    except ValueError:
        return None


@dataclass
class _Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    body: bytes = b""


@dataclass
class FakeArchive:
    """A DICOMweb archive in memory (see the module's description of its two faces)."""

    #: study UID -> the study's instances as DICOM JSON (WADO-RS metadata)
    instances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: study UIDs answered 404 (WADO-RS) while QIDO-RS may still list them
    gone: set[str] = field(default_factory=set)
    #: study UIDs answered 503
    down: set[str] = field(default_factory=set)
    #: study UID -> PatientIDs QIDO lists it under (one row each); a UID not there: 204
    patients_of: dict[str, list[str]] = field(default_factory=dict)
    #: the next N requests are answered 503 (an outage)
    fail_next: int = 0
    #: when not 200, every request is answered with it and ``Retry-After: 17``
    status: int = 200
    #: bearer credentials accepted (``Bearer xyz``); ``None`` accepts any
    accept_tokens: set[str] | None = None
    #: the body of any other path (frames, bulk data); ``None``: such a request fails the test
    bulk: bytes | None = None
    #: metadata is written in pieces of this many bytes by :meth:`handle` (0: at once)
    chunk: int = 0
    #: raw paths, query parameters and headers of every request received
    paths: list[str] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    seen: list[dict[str, str]] = field(default_factory=list)
    #: the archive's DICOMweb base URL once :meth:`serve` runs it
    base: str = ""

    def add(self, study: GeneratedStudy) -> None:
        self.instances[study.study_uid] = instances_json(study)

    def _answer(self, path: str, params: Any, headers: dict[str, str]) -> _Answer:
        self.paths.append(path)
        self.queries.append(dict(params))
        self.seen.append(headers)
        if self.fail_next:
            self.fail_next -= 1
            return _Answer(503)
        auth = headers.get("Authorization", headers.get("authorization", ""))
        if (self.accept_tokens is not None and auth.startswith("Bearer")
                and auth not in self.accept_tokens):
            return _Answer(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if self.status != 200:
            return _Answer(self.status, {"Retry-After": "17"})
        parts = path.split("?", 1)[0].split("/")
        if parts[-1] == "studies" and "StudyInstanceUID" not in params:
            return self._search(params)
        if parts[-1] == "studies":
            uid = params["StudyInstanceUID"]
            rows = [{"0020000D": {"vr": "UI", "Value": [uid]},
                     "00100020": {"vr": "LO", "Value": [pid]}}
                    for pid in self.patients_of.get(uid, [])]
            return _Answer(200, json=rows) if rows else _Answer(204)
        if parts[-1] != "metadata":
            assert self.bulk is not None, path
            return _Answer(200, {"Content-Type": "application/octet-stream"}, body=self.bulk)
        uid = parts[-2]
        if uid in self.down:
            return _Answer(503)
        if uid in self.gone or uid not in self.instances:
            return _Answer(404)
        return _Answer(200, json=self.instances[uid])

    def _search(self, params: Any) -> _Answer:
        rows = [instances[0] for instances in self.instances.values() if instances]
        if span := params.get("StudyDate"):
            low, _, high = (_valid_date(p) for p in span.partition("-"))
            rows = [r for r in rows if (day := _valid_date(_study_date(r))) is not None
                    and (low is None or low <= day) and (high is None or day <= high)]
        offset = int(params.get("offset", 0))
        limit = int(params.get("limit", len(rows)))
        page = rows[offset:offset + limit]
        return _Answer(200, json=page) if page else _Answer(204)

    def handler(self, request: httpx.Request) -> httpx.Response:
        """The ``httpx.MockTransport`` face."""
        answer = self._answer(request.url.raw_path.decode(), request.url.params,
                              dict(request.headers))
        if answer.json is not None:
            return httpx.Response(answer.status, headers=answer.headers, json=answer.json)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The ``aiohttp.web`` face."""
        answer = self._answer(request.path_qs, request.query, dict(request.headers))
        if answer.json is None:
            return web.Response(status=answer.status, headers=answer.headers,
                                body=answer.body or None)
        body = json.dumps(answer.json, separators=(",", ":")).encode()
        response = web.StreamResponse(status=answer.status,
                                      headers={"Content-Type": "application/dicom+json"})
        await response.prepare(request)
        step = self.chunk or len(body)
        for i in range(0, len(body), step):
            await response.write(body[i:i + step])
        await response.write_eof()
        return response

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[FakeArchive]:
        """:meth:`handle` on a free loopback port in the running event loop until the block
        ends; :attr:`base` is its DICOMweb base URL meanwhile."""
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.base = f"http://127.0.0.1:{port}/dicom-web"
        try:
            yield self
        finally:
            await runner.cleanup()
