"""``/docs`` renders in a real browser under the bridge's Content-Security-Policy: Swagger
UI's files and start-up script are served from the bridge itself (FastAPI's page, from a
CDN with an inline script, was blocked and stayed blank)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.e2e_helpers import Product, running_product


@pytest.fixture(scope="module")
def product(orthanc: Any, hapi: Any, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Product]:
    # no synced studies needed: the document describes the routes
    with running_product(orthanc, hapi, tmp_path_factory.mktemp("docs")) as running:
        yield running


def test_swagger_ui_lists_the_operations_and_nothing_is_refused(product: Product,
                                                                 page: Any) -> None:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text)
            if m.type == "error" or "Content Security Policy" in m.text else None)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    response = page.goto(f"{product.url}/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    page.wait_for_selector(".opblock-summary-path")  # the operations are listed
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/dicom-web/studies" in p for p in paths)
    assert any("/status" in p for p in paths)
    assert refused == []
    assert all(url.startswith(product.url) for url in requested)  # nothing from a CDN
