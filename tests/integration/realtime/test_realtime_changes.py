"""Orthanc's /changes feed as a pull source, and a chunked (no Content-Length) STOW upload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from bridge.realtime.orthanc_changes import checkpoint_name
from tests.integration.realtime.realtime_helpers import (
    bearer,
    make_studies,
    realtime_settings,
    series_instances,
    store_in_orthanc,
    stow_body,
    study_counts,
)
from tests.support.servers import RunningBridge
from tests.support.waits import wait_until


def test_changes_feed_syncs_new_studies_and_persists_its_cursor(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    server = orthanc_factory()
    old, new = make_studies(hapi, ns, count=2)
    store_in_orthanc(server, series_instances(old, series=1, per_series=1))  # before start
    archive = f"orthanc-{ns.token}"
    settings = realtime_settings(server, hapi, tmp_path, ns, realtime={
        "orthanc_changes": {"archive": archive, "url": server.base_url, "interval": 0.2}})
    with RunningBridge(settings) as bridge:
        store = bridge.realtime.sync.store
        first = wait_until(lambda: store.get_checkpoint(checkpoint_name(archive)),
                         what="cursor initialised")
        store_in_orthanc(server, series_instances(new, series=2, per_series=1))
        assert wait_until(lambda: study_counts(hapi, new.study_uid) == (2, 2),
                        what="ImagingStudy from /changes")
        assert int(store.get_checkpoint(checkpoint_name(archive)) or 0) > int(first)
    # history before the feed started is the backfill's job, not the feed's
    assert study_counts(hapi, old.study_uid) is None


def test_a_chunked_upload_without_content_length_is_streamed_too(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    study = make_studies(hapi, ns)[0]
    body, ctype = stow_body(series_instances(study, series=1, per_series=3))

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    settings = realtime_settings(orthanc, hapi, tmp_path, ns)
    with RunningBridge(settings) as bridge, httpx.Client(timeout=60) as client:
        resp = client.post(f"{bridge.url}/dicom-web/studies", content=pieces(),
                           headers={**bearer(), "Content-Type": ctype})
        assert resp.status_code == 200, resp.text
        assert wait_until(lambda: study_counts(hapi, study.study_uid) == (1, 3),
                        what="ImagingStudy after chunked STOW")
