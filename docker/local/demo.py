"""The demo (README command 1): archive + EHR + bridge + sample studies, then URLs to open.

Starts Orthanc (DICOMweb, basic auth) and HAPI FHIR on free loopback ports, loads generated
studies into Orthanc, seeds the EHR with their Patients and ServiceRequests, puts the sandbox
SMART EHR (authorization server + protected FHIR proxy) in front of HAPI, backfills the
archive into the EHR with ``imaging-bridge backfill`` and keeps ``imaging-bridge serve``
running (poller + workers + admin API + gateway + SMART app with OHIF) until Ctrl-C.

The four rooms (docker/local/demo_rooms.py): a legacy PACS (DCMTK dcmqrscp) migrated with
``imaging-bridge migrate inventory`` and ``migrate run`` before the backfill; dose and
report SRs stored with some studies and written to the EHR by ``imaging-bridge record
run``; every synced study published to the registry (the demo's HAPI) by ``imaging-bridge
sharing run``; the worklist SCP (with MPPS) in ``serve``, serving today's seeded orders.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "docker" / "postman"))

import demo_rooms as rooms  # noqa: E402
import devstack  # noqa: E402
import httpx  # noqa: E402
import postman_env  # noqa: E402
from sandbox_ehr import SandboxEhr  # noqa: E402

from samples.generator import StudyTruth, generate_studies  # noqa: E402
from samples.load import load_studies  # noqa: E402
from samples.real_images import real_studies  # noqa: E402
from samples.seed_ehr import seed_ehr  # noqa: E402

APP_CLIENT = "imaging-app"
GATEWAY_CLIENT = "imaging-gateway"


def _ohif_dist() -> str:
    out = subprocess.run(["bash", str(ROOT / "docker" / "local" / "fetch_ohif.sh")],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _write_config(path: Path, stack: devstack.Stack, api_port: int, ehr: SandboxEhr,
                  gateway_secret: str, stow_token: str, admin_password: str,
                  webhook_secret: str | None = None,
                  room_settings: dict[str, Any] | None = None) -> None:
    assert stack.orthanc is not None and stack.hapi is not None
    api = f"http://127.0.0.1:{api_port}"
    config = {
        "archives": [
            {
                "name": "orthanc",
                "base_url": stack.orthanc.dicomweb_url,
                "auth": {
                    "kind": "basic",
                    "username": stack.orthanc.username,
                    "password": stack.orthanc.password,
                },
            }
        ],
        "fhir": {"base_url": stack.hapi.fhir_url, "batch_size": 20},
        "state": {"url": f"sqlite:///{path.parent / 'bridge-state.db'}"},
        "sync": {"poll_interval": 10, "poll_window_days": 3, "workers": 2},
        # the admin routes (/status, /metrics, /studies/{uid}) ask for this user: a browser
        # shows its sign-in prompt
        "api": {"host": "127.0.0.1", "port": api_port,
                "admin_auth": {"basic_users": {"admin": admin_password}}},
        "mapping": {"files": [str(ROOT / "mappings" / "default.yaml"),
                              str(ROOT / "mappings" / "site-example.yaml")]},
        # the patient-scoped DICOMweb gateway: EHR tokens checked by introspection at the
        # sandbox EHR, viewer tokens minted by the SMART app
        "gateway": {
            "enabled": True, "public_url": f"{api}/dicom-web",
            "viewer_token_secret": secrets.token_urlsafe(32),
            "introspection_url": ehr.introspection_url, "client_id": GATEWAY_CLIENT,
            "client_secret": gateway_secret, "audience": ehr.fhir_url,
            "viewer_url_template": "/app/viewer?StudyInstanceUIDs={study_uids}",
        },
        "smart": {
            "enabled": True, "client_id": APP_CLIENT, "iss_allowlist": [ehr.fhir_url],
            "standalone_iss": ehr.fhir_url, "ohif_dist_dir": _ohif_dist(),
            # the history shows each study's report and dose when granted these
            "extra_scopes": ["online_access", "patient/DiagnosticReport.rs",
                             "patient/Observation.rs"],
        },
        # real time: Orthanc's /changes feed (a study stored in Orthanc by any means syncs
        # within seconds) and the STOW-RS proxy at /dicom-web/studies (bearer token below)
        "realtime": {
            "orthanc_changes": {"archive": "orthanc", "url": stack.orthanc.base_url},
            "stow_auth": {"bearer_tokens": [stow_token]},
            # signed POST /notifications (the Postman collection signs its own)
            **({"webhook_secret": webhook_secret} if webhook_secret else {}),
        },
        # migration, worklist, record, sharing (docker/local/demo_rooms.py)
        **(room_settings or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=2)  # JSON is YAML


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bridge.cli", *args]


def _forget_last_run(workdir: Path) -> None:
    """Remove the previous run's state store: its servers are gone and these are new and
    empty, but the generated studies are the same (same seed, same UIDs), so a kept store
    would take every one for synced already and leave the new EHR empty."""
    for old in workdir.glob("bridge-state.db*"):
        old.unlink()


def _count(fhir_url: str, resource: str, **params: str) -> int:
    resp = httpx.get(f"{fhir_url}/{resource}", params={"_summary": "count", **params},
                     headers={"Cache-Control": "no-cache"}, timeout=60)
    resp.raise_for_status()
    return int(resp.json().get("total", 0))


def _imaging_studies(fhir_url: str) -> int:
    return _count(fhir_url, "ImagingStudy")


def _bridge(*args: str) -> None:
    """An imaging-bridge command run in this process, with the demo's configuration from
    ``BRIDGE_CONFIG_FILE``: the CLI's imports (about 3 s of CPU) are paid once, not per
    command."""
    from bridge.cli import app

    print(f"demo: imaging-bridge {' '.join(args)}", flush=True)
    code = app(list(args), standalone_mode=False, prog_name="imaging-bridge")
    if code:  # typer.Exit(n) comes back as its code
        raise SystemExit(f"demo: imaging-bridge {' '.join(args)} failed (exit {code})")


def _wait_for(what: str, condition: Callable[[], bool], *, timeout: float) -> None:
    """Until ``condition()`` holds (checked twice a second), or exit naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.5)


class Timer:
    """Seconds per step of the set-up, printed at the end (README: what each step costs)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.steps.append((name, now - self._last))
        self._last = now

    def line(self) -> str:
        total = sum(s for _, s in self.steps)
        return f"demo: set up in {total:.0f} s (" + ", ".join(
            f"{name} {s:.1f}" for name, s in self.steps) + ")"


def _wait_for_rooms(fhir: str, worklist_port: int, accession: str, *, recorded: int,
                    studies: int, deadline: float) -> None:
    """Until serve's rooms did their part: the worklist serves the first order, the record
    room wrote every report and dose summary, the sharing room a manifest per study."""
    rooms.wait_for_worklist(worklist_port, accession, deadline=deadline)
    _wait_for("every report and dose SR in the EHR", lambda: (
        _count(fhir, "DiagnosticReport"),
        _count(fhir, "Observation", code=rooms.DOSE_SUMMARY)) == (recorded, recorded),
        timeout=120)
    print(f"demo: the EHR holds {recorded} DiagnosticReports and {recorded} dose summaries "
          f"(record room)")
    _wait_for("a manifest of every study in the registry", lambda: _count(
        fhir, "DocumentReference", status="current") == studies, timeout=180)
    print(f"demo: the registry holds {studies} current imaging manifests (sharing room)")


def _print_room_urls(api: str, fhir: str, *, patient: StudyTruth) -> None:
    ident = f"{patient.patient_system}|{patient.patient_id}"
    print(f"  outside imaging     {api}/app/outside   (after a launch: site B's view of "
          f"the registry)")
    print(f"  reports             {fhir}/DiagnosticReport?patient.identifier={ident}")
    print(f"  dose summaries      {fhir}/Observation?code={rooms.DOSE_SUMMARY}"
          f"&patient.identifier={ident}")
    print(f"  registry manifests  {fhir}/DocumentReference?status=current&_count=20")


def _print_room_commands(*, config: Path, workdir: Path, accession: str,
                         worklist_port: int, patient: StudyTruth) -> None:
    cli = f"BRIDGE_CONFIG_FILE={config} .venv/bin/imaging-bridge"
    affinity = rooms.affinity_systems()[patient.patient_issuer]
    print("Try, in another shell (from the repository):")
    print(f"  migration report    {cli} migrate report --source {rooms.LEGACY_SOURCE}")
    print(f"  worklist (findscu)  findscu -W -aet {rooms.FINDSCU_AE} -aec {rooms.MWL_AE} "
          f"127.0.0.1 {worklist_port} -k AccessionNumber -k PatientID -k PatientName "
          f"-k StudyInstanceUID -k '(0040,0100)[0].Modality' "
          f"-k '(0040,0100)[0].ScheduledProcedureStepStartDate'")
    print(f"  modality simulator  .venv/bin/python docker/local/modality_sim.py --config "
          f"{config} --accession {accession}   (C-FIND, MPPS, STOW: the order "
          f"completes, the study is basedOn it)")
    print(f"  analytics export    {cli} export --out {workdir / 'export'} --csv")
    print(f"  outside studies     {cli} sharing outside --patient "
          f"'{affinity}|{patient.patient_id}'")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=60)
    parser.add_argument("--legacy-studies", type=int, default=6,
                        help="studies in the legacy PACS, migrated by the demo")
    parser.add_argument("--record-studies", type=int, default=4,
                        help="studies given a dose SR and a report SR")
    parser.add_argument("--no-rooms", action="store_true",
                        help="the sync alone: no legacy PACS, worklist, record or sharing "
                             "(starts faster)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workdir", default=str(ROOT / ".run" / "demo"))
    parser.add_argument(
        "--exit-after-setup",
        action="store_true",
        help="stop everything once the URLs are printed (for CI checks)",
    )
    args = parser.parse_args()
    with_rooms = not args.no_rooms

    workdir = Path(args.workdir)
    _forget_last_run(workdir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    timer = Timer()
    print("demo: starting Orthanc and HAPI FHIR (first start of HAPI takes a minute) ...")
    stack = devstack.Stack(repo_root=ROOT)
    serve: subprocess.Popen[bytes] | None = None
    ehr: SandboxEhr | None = None
    legacy = None
    try:
        stack.start({"orthanc", "hapi"})
        stack.write_state(workdir / "stack.json")
        assert stack.orthanc is not None and stack.hapi is not None
        timer.lap("servers")
        print(f"demo: servers up in {timer.steps[-1][1]:.0f} s")

        studies = list(generate_studies(args.studies, seed=args.seed))
        # real anonymized images (pydicom test files: MR, CT, CR, US, multi-frame; JPEG 2000,
        # JPEG-LS, RLE, JPEG) re-identified as studies of the same synthetic patients
        real = real_studies([s.patient for s in studies], seed=args.seed)
        loaded = load_studies(
            [*studies, *real],
            url=stack.orthanc.dicomweb_url,
            username=stack.orthanc.username,
            password=stack.orthanc.password,
        )
        print(
            f"demo: stored {loaded.studies} studies ({loaded.stored_instances} instances) "
            f"in Orthanc"
        )
        # issue 16: a dose SR and a report SR beside some studies' images
        recorded, sr_files = rooms.record_instances(
            studies, count=args.record_studies if with_rooms else 0, seed=args.seed)
        if recorded:
            rooms.store_in_orthanc(stack.orthanc.base_url, stack.orthanc.auth, sr_files)
            print(f"demo: stored a dose SR and a report SR with {len(recorded)} of them")
        timer.lap("load")

        # issue 15: the legacy PACS, holding more studies of the same patients
        old = rooms.legacy_studies(args.studies, args.legacy_studies if with_rooms else 0,
                                   seed=args.seed)
        if with_rooms:
            legacy = rooms.start_legacy(old, workdir / "legacy-files")
            print(f"demo: legacy PACS (DCMTK dcmqrscp, AE {legacy.ae_title}, port "
                  f"{legacy.port}) holds {len(old)} older studies")
            timer.lap("legacy PACS")

        truths = [s.truth for s in studies] + [s.truth for s in real]
        seeded = seed_ehr(truths, fhir_url=stack.hapi.fhir_url, patients_fraction=1.0,
                          seed=args.seed)
        print(f"demo: seeded the EHR with {seeded.patients_created} Patients and "
              f"{seeded.service_requests_created} ServiceRequests")
        fhir = stack.hapi.fhir_url
        accessions: list[str] = []
        if with_rooms:
            # issue 17: the performed studies' orders are completed; new ones scheduled
            rooms.complete_past_orders(fhir, truths, seeded)
            accessions = rooms.schedule_orders(fhir, truths, seeded)
            # issue 14: the affinity domain's patient identifiers, as an identity feed
            # adds them
            rooms.join_affinity_domain(fhir, truths, seeded)
            print(f"demo: scheduled {len(accessions)} orders for the worklist "
                  f"({', '.join(accessions)}); the {seeded.service_requests_created} orders "
                  f"of performed studies marked completed")
        timer.lap("seed EHR")

        api_port = devstack.free_port()
        api = f"http://127.0.0.1:{api_port}"
        ehr = SandboxEhr(stack.hapi.fhir_url).start()
        gateway_secret = secrets.token_urlsafe(32)
        ehr.register_client(GATEWAY_CLIENT, secret=gateway_secret)
        ehr.register_client(APP_CLIENT, redirect_uris=[f"{api}/smart/callback"],
                            launch_url=f"{api}/smart/launch", name="Imaging history")
        config = workdir / "bridge.yaml"
        stow_token = secrets.token_urlsafe(24)
        admin_password, webhook_secret = secrets.token_urlsafe(18), secrets.token_urlsafe(24)
        worklist_port = devstack.free_port()
        room_settings = {} if legacy is None else {
            "migration": rooms.migration_settings(legacy, workdir / "spool"),
            "worklist": rooms.worklist_settings(
                worklist_port, rooms.write_worklist_mapping(workdir / "worklist.yaml")),
            "record": {"enabled": True},
            "sharing": {"enabled": True, "registry": {"base_url": fhir}},
        }
        _write_config(config, stack, api_port, ehr, gateway_secret, stow_token,
                      admin_password=admin_password, webhook_secret=webhook_secret,
                      room_settings=room_settings)
        env = {**os.environ, "BRIDGE_CONFIG_FILE": str(config)}
        os.environ["BRIDGE_CONFIG_FILE"] = str(config)  # for the commands run in here
        timer.lap("SMART EHR")

        if with_rooms:
            source = ("--source", rooms.LEGACY_SOURCE)
            # one C-FIND window for all the legacy dates (each window is one association)
            _bridge("migrate", "inventory", *source, "--window-days", "36500")
            _bridge("migrate", "run", *source)
            timer.lap("migration")

        _bridge("backfill")
        in_ehr = _imaging_studies(fhir)
        in_archive = loaded.studies + len(old)
        migrated = f" ({len(old)} of them migrated)" if old else ""
        print(f"demo: the EHR holds {in_ehr} ImagingStudies for the {in_archive} studies "
              f"in Orthanc{migrated}")
        if in_ehr != in_archive:
            print("demo: the backfill did not bring every study into the EHR", file=sys.stderr)
            return 1
        timer.lap("backfill")

        # serve's record and sharing rooms take the follow-ups the backfill queued
        serve = subprocess.Popen(_cli("serve"), env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        if with_rooms:
            _wait_for_rooms(fhir, worklist_port, accessions[0], recorded=len(recorded),
                            studies=in_archive, deadline=deadline)
            timer.lap("serve: worklist, record, sharing")
        else:
            timer.lap("serve")
        first = studies[0].truth
        dosed = recorded[0].truth if recorded else first
        postman = postman_env.prepare_demo(
            workdir / "postman", bridge=api, ehr=ehr, fhir_url=fhir,
            truths=truths, admin_password=admin_password,
            stow_token=stow_token, webhook_secret=webhook_secret)
        print(timer.line())
        print("\n=== imaging-fhir-bridge demo is up ===")
        print(f"  EHR launch page     {ehr.launch_page_url}   <- pick a patient, click Imaging")
        print(f"  standalone launch   {api}/smart/launch")
        print(f"  bridge status       {api}/status   (user admin, password: "
              f"api.admin_auth in the config below)")
        print(f"  bridge readiness    {api}/readyz")
        print(f"  bridge metrics      {api}/metrics  (same user)")
        print(f"  one study's history {api}/studies/{first.study_uid}  (same user)")
        print(f"  EHR ImagingStudies  {fhir}/ImagingStudy?_sort=-started&_count=20")
        print(
            f"  one patient's       {fhir}/ImagingStudy?subject.identifier="
            f"{first.patient_system}|{first.patient_id}&_sort=-started"
        )
        if with_rooms:
            _print_room_urls(api, fhir, patient=dosed)
        print(
            f"  Orthanc explorer    {stack.orthanc.base_url}/app/explorer.html "
            f"(user {stack.orthanc.username}, password in {workdir / 'stack.json'})"
        )
        print(f"  IHE IID (launch 1st) {api}/IHEInvokeImageDisplay?requestType=STUDY"
              f"&studyUID={first.study_uid}")
        print(f"  STOW-RS via bridge  POST {api}/dicom-web/studies  (bearer token: "
              f"realtime.stow_auth in the config below; stored studies sync at once)")
        print(f"  bridge config       {config}")
        print(f"  Postman environment {postman.environment}  (import it with "
              f"docker/postman/imaging-bridge.postman_collection.json; working directory "
              f"{postman.workdir})")
        if with_rooms:
            _print_room_commands(config=config, workdir=workdir, accession=accessions[0],
                                 worklist_port=worklist_port, patient=dosed)
        print("Ctrl-C stops everything.\n", flush=True)
        if args.exit_after_setup:
            return 0
        while not stop.wait(1.0):
            if serve.poll() is not None:
                print("demo: the bridge service exited", file=sys.stderr)
                return 1
        return 0
    finally:
        if serve is not None and serve.poll() is None:
            serve.terminate()
            try:
                serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                serve.kill()
        if ehr is not None:
            ehr.stop()
        if legacy is not None:
            legacy.stop()
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
