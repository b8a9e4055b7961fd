"""Backfill and polling against the real Orthanc and HAPI FHIR servers (issue: sync engine)."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydicom.uid import UID

from bridge.sync.backfill import mark_history
from bridge.sync.poller import poll_window
from samples.generator import write_part10
from tests.integration.sync_helpers import (
    REPO_ROOT,
    bridge_settings,
    fhir_search,
    load_and_seed,
    study_by_uid,
)
from tests.support.wiring import sync_context


def _entries(table: Any) -> list[tuple[str, Any]]:
    # the table keeps its source and version beside the entries
    body = table.get("entries", table)
    return [(k, v) for k, v in body.items() if isinstance(v, dict) and "code" in v]


async def _backfill(settings: Any, start: Any, end: Any) -> Any:
    async with sync_context(settings) as ctx:
        await mark_history(ctx.archives["orthanc"], ctx.store, start=start, end=end,
                           window_days=3650)
        return await ctx.runner.drain()


async def test_backfill_gives_each_study_exactly_one_correct_imaging_study(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    loaded = load_and_seed(orthanc, hapi, ns, count=6)
    settings = bridge_settings(orthanc, hapi, tmp_path)
    start, end = loaded.dates
    stats = await _backfill(settings, start, end)
    assert stats.synced >= len(loaded.truths)

    for truth in loaded.truths:
        found = study_by_uid(hapi, truth.study_uid)
        assert len(found) == 1, truth.study_uid
        study = found[0]
        assert study["numberOfSeries"] == truth.series_count
        assert study["numberOfInstances"] == truth.instance_count
        assert {m["code"] for m in study["modality"]} == set(truth.modalities)
        assert {s["modality"]["code"] for s in study["series"]} == set(truth.modalities)
        patients = fhir_search(hapi, "Patient",
                               {"identifier": f"{truth.patient_system}|{truth.patient_id}"})
        assert len(patients) == 1
        assert study["subject"]["reference"] == f"Patient/{patients[0]['id']}"
        acsn = [b for b in study["basedOn"]
                if b["identifier"]["value"] == truth.accession_number]
        assert acsn and acsn[0]["identifier"]["system"] == truth.accession_system
        orders = fhir_search(hapi, "ServiceRequest", {
            "identifier": f"{truth.accession_system}|{truth.accession_number}"})
        assert acsn[0]["reference"] == f"ServiceRequest/{orders[0]['id']}"
        endpoint_id = study["endpoint"][0]["reference"].split("/")[1]
        with httpx.Client() as client:
            endpoint = client.get(f"{hapi.fhir_url}/Endpoint/{endpoint_id}").json()
        assert endpoint["address"] == orthanc.dicomweb_url
        assert endpoint["connectionType"]["code"] == "dicom-wado-rs"


async def test_second_run_without_archive_change_writes_nothing(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    loaded = load_and_seed(orthanc, hapi, ns, count=4)
    settings = bridge_settings(orthanc, hapi, tmp_path)
    start, end = loaded.dates
    await _backfill(settings, start, end)
    versions = {t.study_uid: study_by_uid(hapi, t.study_uid)[0]["meta"]["versionId"]
                for t in loaded.truths}

    async with sync_context(settings) as ctx:
        # force every study through the pipeline again: the content hash must stop the write
        ctx.store.mark_many_due("orthanc", [(t.study_uid, None) for t in loaded.truths],
                                reason="manual")
        stats = await ctx.runner.drain()
    assert stats.synced == 0
    assert stats.unchanged == len(loaded.truths)
    for uid, version in versions.items():
        assert study_by_uid(hapi, uid)[0]["meta"]["versionId"] == version


async def test_added_series_updates_the_imaging_study_once_on_the_next_poll(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    loaded = load_and_seed(orthanc, hapi, ns, count=2)
    settings = bridge_settings(orthanc, hapi, tmp_path)
    start, end = loaded.dates
    await _backfill(settings, start, end)
    target = loaded.studies[0]
    before = study_by_uid(hapi, target.study_uid)[0]

    extra = copy.deepcopy(next(target.instances()))
    extra.SeriesInstanceUID = UID(ns.uid())
    extra.SOPInstanceUID = UID(ns.uid())
    extra.SeriesNumber = 99
    extra.InstanceNumber = 1
    extra.file_meta.MediaStorageSOPInstanceUID = extra.SOPInstanceUID
    body = write_part10(extra)
    with httpx.Client(auth=orthanc.auth) as client:
        resp = client.post(f"{orthanc.base_url}/instances", content=body)
        assert resp.status_code == 200, resp.text

    # poll only the target's own day: other tests' studies share this archive
    t = target.truth.study_date
    day = date(int(t[:4]), int(t[4:6]), int(t[6:8]))
    async with sync_context(settings) as ctx:
        polled = await poll_window(ctx.archives["orthanc"], ctx.store, start=day, end=day)
        assert polled.due >= 1
        stats = await ctx.runner.drain()
        assert stats.synced >= 1
        # a second poll with no change marks nothing due
        again = await poll_window(ctx.archives["orthanc"], ctx.store, start=day, end=day)
        assert again.due == 0
    after = study_by_uid(hapi, target.study_uid)
    assert len(after) == 1
    assert int(after[0]["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert after[0]["numberOfSeries"] == target.truth.series_count + 1
    assert after[0]["numberOfInstances"] == target.truth.instance_count + 1


async def test_longitudinal_queries_return_the_archive_ground_truth(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    # few patients, many studies: each patient gets a real history
    loaded = load_and_seed(orthanc, hapi, ns, count=10)
    settings = bridge_settings(orthanc, hapi, tmp_path)
    start, end = loaded.dates
    await _backfill(settings, start, end)

    by_patient: dict[tuple[str, str], list[Any]] = {}
    for t in loaded.truths:
        by_patient.setdefault((t.patient_system, t.patient_id), []).append(t)
    for (system, pid), truths in by_patient.items():
        patient = fhir_search(hapi, "Patient", {"identifier": f"{system}|{pid}"})[0]
        ref = f"Patient/{patient['id']}"
        history = fhir_search(hapi, "ImagingStudy", {"patient": ref, "_sort": "-started"})
        got = [s["identifier"][0]["value"].removeprefix("urn:oid:") for s in history]
        assert sorted(got) == sorted(t.study_uid for t in truths)
        started = [s.get("started", "") for s in history]
        assert started == sorted(started, reverse=True)
        for modality in {m for t in truths for m in t.modalities}:
            hits = fhir_search(hapi, "ImagingStudy", {"patient": ref, "modality": modality})
            assert {h["id"] for h in hits} == {
                s["id"] for s in history
                if modality in {x["code"] for x in s["modality"]}}
        year = truths[0].study_date[:4]
        in_year = fhir_search(hapi, "ImagingStudy", [
            ("patient", ref), ("started", f"ge{year}-01-01"),
            ("started", f"lt{int(year) + 1}-01-01")])
        assert {s["identifier"][0]["value"] for s in in_year} == {
            f"urn:oid:{t.study_uid}" for t in truths if t.study_date[:4] == year}

    # body site: every study with a CHEST series, for these patients
    chest = [t for t in loaded.truths if "CHEST" in t.body_parts]
    if chest:
        table = json.loads((REPO_ROOT / "mappings/tables/body_parts.json").read_text())
        code = next(v["code"] for k, v in _entries(table) if k == "CHEST")
        hits = fhir_search(hapi, "ImagingStudy", {"bodysite": f"http://snomed.info/sct|{code}"})
        ours = {h["identifier"][0]["value"] for h in hits} & {
            f"urn:oid:{t.study_uid}" for t in loaded.truths}
        assert ours == {f"urn:oid:{t.study_uid}" for t in chest}
