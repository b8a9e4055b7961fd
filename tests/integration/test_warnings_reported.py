"""Mapping warnings against the real Orthanc and HAPI FHIR: a study with a value the mapping
cannot use is still synced, and its warning is reported by ``GET /studies/{uid}``,
``GET /status``, ``/metrics`` and ``imaging-bridge warnings`` (the interface team's feedback
when they change mappings/*.yaml)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from bridge.api import create_app
from bridge.cli import app as cli_app
from samples.generator import generate_studies, write_part10
from samples.seed_ehr import seed_ehr
from tests.integration.admin_helpers import ADMIN_HEADERS, with_admin
from tests.integration.sync_helpers import bridge_settings, study_by_uid
from tests.support.servers import app_client
from tests.support.wiring import sync_context

ARCHIVE = "orthanc"  # the name bridge_settings gives the archive


def _marked_name(ns: Any) -> str:
    """A patient name no warning text can contain by chance (a generated name's short parts,
    such as a one-letter middle initial, are substrings of ordinary words)."""
    return f"Zzfamily{ns.token}^Zzgiven{ns.token}"


def _load_with_body_part(orthanc: Any, hapi: Any, ns: Any, body_part: str) -> Any:
    """Store one study whose every instance says ``BodyPartExamined = body_part`` and carries
    the marked patient name, and seed its Patient and orders in the EHR."""
    study = next(iter(generate_studies(1, seed=int(ns.token, 16) % 2**31 + 7,
                                       profile="small", id_prefix=ns.token[:6].upper())))
    with httpx.Client(auth=orthanc.auth, timeout=60) as client:
        for ds in study.instances():
            ds = copy.deepcopy(ds)
            ds.BodyPartExamined = body_part
            ds.PatientName = _marked_name(ns)
            resp = client.post(f"{orthanc.base_url}/instances", content=write_part10(ds))
            assert resp.status_code == 200, resp.text
    seed_ehr([study.truth], fhir_url=hapi.fhir_url)
    return study


async def test_a_study_with_an_unknown_body_part_is_synced_and_its_warning_reported(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path, root_logging: None
) -> None:
    study = _load_with_body_part(orthanc, hapi, ns, "ELBOWX")
    uid = study.study_uid
    settings = bridge_settings(orthanc, hapi, tmp_path)
    async with sync_context(settings) as ctx:
        ctx.store.mark_due(ARCHIVE, uid, reason="manual")
        stats = await ctx.runner.drain()
    assert (stats.synced, stats.failed, stats.retried) == (1, 0, 0)

    # the warning did not stop the write: the ImagingStudy is there, without a bodySite
    [written] = study_by_uid(hapi, uid)
    assert written["numberOfInstances"] == study.truth.instance_count
    assert all("bodySite" not in series for series in written["series"])

    app = create_app(with_admin(settings), run_sync=False)
    async with app_client(app, headers=ADMIN_HEADERS) as client:
        resp = await client.get(f"/studies/{uid}")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert [s["status"] for s in body["states"]] == ["synced"]
        [body_part] = [w for w in body["warnings"] if w["code"] == "unknown-body-part"]
        assert (body_part["archive"], body_part["tag"], body_part["value"]) == (
            ARCHIVE, "(0018,0015) BodyPartExamined", "ELBOWX")
        assert body_part["where"].startswith("series ")
        text = json.dumps(body["warnings"])
        assert study.truth.patient_id not in text  # never patient data
        assert all(part not in text for part in _marked_name(ns).split("^"))

        status = (await client.get("/status")).json()
        assert status["studies_with_warnings"] == 1  # this test's own store

        metrics = (await client.get("/metrics")).text
        counted = [s.value for f in text_string_to_metric_families(metrics) for s in f.samples
                   if s.name == "bridge_mapping_warnings_total"
                   and s.labels == {"archive": ARCHIVE, "code": "unknown-body-part"}]
        assert counted and counted[0] >= 1

    config = str(tmp_path / "bridge.yaml")
    runner = CliRunner()
    result = runner.invoke(cli_app, ["warnings", "show", uid, "-c", config, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert {(w["code"], w["value"]) for w in shown} >= {("unknown-body-part", "ELBOWX")}

    result = runner.invoke(cli_app, ["warnings", "list", "-c", config, "--json",
                                     "--code", "unknown-body-part"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["counts"]["unknown-body-part"] == 1
    assert [(s["archive"], s["study_uid"], s["status"]) for s in listed["studies"]] == [
        (ARCHIVE, uid, "synced")]


async def test_resync_by_warning_code_after_the_mapping_learns_the_term(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path, root_logging: None
) -> None:
    """The interface team's loop: a warning, the term added to the mapping as data,
    ``resync --code`` -> the study is written again with the bodySite and its warning is
    gone; a resync with nothing changed writes nothing; ``--force`` writes anyway."""
    study = _load_with_body_part(orthanc, hapi, ns, "ELBOWX")
    uid = study.study_uid
    settings = bridge_settings(orthanc, hapi, tmp_path)
    async with sync_context(settings) as ctx:
        ctx.store.mark_due(ARCHIVE, uid, reason="manual")
        await ctx.runner.drain()
    [first] = study_by_uid(hapi, uid)
    assert all("bodySite" not in series for series in first["series"])

    # the site mapping learns the local term (data, not code), as mappings/site-example.yaml
    site = tmp_path / "site.yaml"
    site.write_text("version: 1\nbody_parts:\n  ELBOWX: ELBOW\n")
    config_path = tmp_path / "bridge.yaml"
    config = json.loads(config_path.read_text())
    config["mapping"]["files"].append(str(site))
    config_path.write_text(json.dumps(config))
    runner = CliRunner()
    cli = ["-c", str(config_path)]

    refused = runner.invoke(cli_app, ["resync", *cli, "--code", "no-such-code"])
    assert refused.exit_code == 2 and "unknown warning code" in refused.output
    other = runner.invoke(cli_app, ["resync", *cli, "--code", "invalid-date"])
    assert other.exit_code == 0 and "0 synced studies" in other.output
    result = runner.invoke(cli_app, ["resync", *cli, "--code", "unknown-body-part"])
    assert result.exit_code == 0, result.output
    assert "1 synced studies due again" in result.output

    from bridge.config import load_settings

    settings = load_settings(config_path)
    async with sync_context(settings) as ctx:
        stats = await ctx.runner.drain()
        assert stats.synced == 1
        # the body part warning is gone (others, e.g. the RIS's coding scheme, remain)
        codes = {w.code for w in ctx.store.study_warnings(uid)}
        assert "unknown-body-part" not in codes
    [second] = study_by_uid(hapi, uid)
    assert int(second["meta"]["versionId"]) == int(first["meta"]["versionId"]) + 1
    # R4 ImagingStudy.series.bodySite is a Coding; SNOMED CT 16953009 (PS3.16 CID 4031 ELBOW)
    assert {(s["bodySite"]["system"], s["bodySite"]["code"]) for s in second["series"]} == {
        ("http://snomed.info/sct", "16953009")}

    # nothing changed since: the resync maps again but writes nothing (audit: skip-unchanged)
    assert runner.invoke(cli_app, ["resync", *cli, uid]).exit_code == 0
    async with sync_context(settings) as ctx:
        await ctx.runner.drain()
        assert _last_action(ctx.store, uid) == "skip-unchanged"
    # --force: the PUT is sent although unchanged (the EHR's copy was edited or lost); HAPI
    # answers an identical update without a new version, so the audit tells, not versionId
    assert runner.invoke(cli_app, ["resync", *cli, "--all", "--force"]).exit_code == 0
    async with sync_context(settings) as ctx:
        await ctx.runner.drain()
        assert _last_action(ctx.store, uid) == "update"


def _last_action(store: Any, uid: str) -> str:
    from bridge.state import AuditView

    audits = [e for e in store.study_history(uid) if isinstance(e, AuditView)
              and e.fhir_type == "ImagingStudy"]
    return str(max(audits, key=lambda e: e.id).action.value)
