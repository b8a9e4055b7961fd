"""Issue 12 item 8: OHIF's Content-Security-Policy (smart_app.viewer).  The page gets no
``'unsafe-eval'``; the scripts a browser fetches for a web worker (OHIF's codecs, whose
Emscripten glue builds functions from strings) do.  Chromium rendering under it is proved
in tests/e2e/test_smart_viewer_e2e.py."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from smart_app.viewer import DataSource, OhifFiles, find_dist, viewer_routes


def _client() -> tuple[TestClient, OhifFiles]:
    dist = find_dist(None)
    assert dist is not None, "run docker/local/fetch_ohif.sh first (OHIF dist missing)"
    files = OhifFiles(dist)
    app = FastAPI()
    app.include_router(viewer_routes(files, sources=[
        DataSource("main", "/dicom-web"),
        DataSource("other", "https://gateway.example.org/dicom-web/other")]))
    return TestClient(app), files


def _script_src(resp: object) -> list[str]:
    header: str = resp.headers["content-security-policy"]  # type: ignore[attr-defined]
    found = re.search(r"script-src ([^;]+)", header)
    assert found is not None
    return found.group(1).split()


def test_the_page_may_run_its_own_and_its_two_inline_scripts_but_never_eval() -> None:
    client, _ = _client()
    resp = client.get("/viewer/viewer?StudyInstanceUIDs=1.2.3",
                      headers={"Sec-Fetch-Dest": "document"})
    script = _script_src(resp)
    assert "'unsafe-eval'" not in script and "'unsafe-inline'" not in script
    assert "'wasm-unsafe-eval'" in script
    inline = re.findall(rb"<script>(.*?)</script>", resp.content, re.DOTALL)
    assert len(inline) == 2 and b'window.PUBLIC_URL="/viewer/"' in inline[0]
    for body in inline:  # CSP Level 3 hash-source of each inline script as served
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert f"'sha256-{digest}'" in script
    header = resp.headers["content-security-policy"]
    assert "connect-src 'self' data: blob: https://gateway.example.org;" in header
    assert "Sec-Fetch-Dest" in resp.headers["vary"]


def test_a_worker_script_may_eval_and_caches_keep_the_two_apart() -> None:
    client, files = _client()
    bundle = files.prefetch_urls()[0]
    worker = client.get(bundle, headers={"Sec-Fetch-Dest": "worker",
                                         "Accept-Encoding": "gzip"})
    assert "'unsafe-eval'" in _script_src(worker)
    assert "'unsafe-inline'" not in _script_src(worker)
    assert worker.headers["vary"] == "Accept-Encoding, Sec-Fetch-Dest"
    as_script = client.get(bundle, headers={"Sec-Fetch-Dest": "script"})
    # any fetch but a page's gets the worker policy: on a classic script's response a
    # policy has no effect, so only pages need telling apart
    assert "'unsafe-eval'" in _script_src(as_script)
