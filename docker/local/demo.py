"""The demo (README command 1): archive + EHR + bridge + sample studies, then URLs to open.

Starts Orthanc (DICOMweb, basic auth) and HAPI FHIR on free loopback ports, loads generated
studies into Orthanc, seeds the EHR with their Patients and ServiceRequests, puts the sandbox
SMART EHR (authorization server + protected FHIR proxy) in front of HAPI, backfills the
archive into the EHR with ``imaging-bridge backfill`` and keeps ``imaging-bridge serve``
running (poller + workers + admin API + gateway + SMART app with OHIF) until Ctrl-C.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "docker" / "postman"))

import devstack  # noqa: E402
import httpx  # noqa: E402
import postman_env  # noqa: E402
from sandbox_ehr import SandboxEhr  # noqa: E402

from samples.generator import generate_studies  # noqa: E402
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
                  webhook_secret: str | None = None) -> None:
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
        },
        # real time: Orthanc's /changes feed (a study stored in Orthanc by any means syncs
        # within seconds) and the STOW-RS proxy at /dicom-web/studies (bearer token below)
        "realtime": {
            "orthanc_changes": {"archive": "orthanc", "url": stack.orthanc.base_url},
            "stow_auth": {"bearer_tokens": [stow_token]},
            # signed POST /notifications (the Postman collection signs its own)
            **({"webhook_secret": webhook_secret} if webhook_secret else {}),
        },
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


def _imaging_studies(fhir_url: str) -> int:
    resp = httpx.get(f"{fhir_url}/ImagingStudy", params={"_summary": "count"},
                     headers={"Cache-Control": "no-cache"}, timeout=60)
    resp.raise_for_status()
    return int(resp.json().get("total", 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=60)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workdir", default=str(ROOT / ".run" / "demo"))
    parser.add_argument(
        "--exit-after-setup",
        action="store_true",
        help="stop everything once the URLs are printed (for CI checks)",
    )
    args = parser.parse_args()

    workdir = Path(args.workdir)
    _forget_last_run(workdir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    t0 = time.monotonic()
    print("demo: starting Orthanc and HAPI FHIR (first start of HAPI takes a minute) ...")
    stack = devstack.Stack(repo_root=ROOT)
    serve: subprocess.Popen[bytes] | None = None
    ehr: SandboxEhr | None = None
    try:
        stack.start({"orthanc", "hapi"})
        stack.write_state(workdir / "stack.json")
        assert stack.orthanc is not None and stack.hapi is not None
        print(f"demo: servers up in {time.monotonic() - t0:.0f} s")

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
        seeded = seed_ehr(
            [s.truth for s in [*studies, *real]],
            fhir_url=stack.hapi.fhir_url,
            patients_fraction=1.0,
            seed=args.seed,
        )
        print(f"demo: seeded the EHR with {seeded.patients_created} Patients and "
              f"{seeded.service_requests_created} ServiceRequests")

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
        _write_config(config, stack, api_port, ehr, gateway_secret, stow_token,
                      admin_password=admin_password, webhook_secret=webhook_secret)
        env = {**os.environ, "BRIDGE_CONFIG_FILE": str(config)}
        subprocess.run(_cli("backfill"), env=env, check=True, cwd=ROOT)
        in_ehr = _imaging_studies(stack.hapi.fhir_url)
        print(f"demo: the EHR holds {in_ehr} ImagingStudies for the {loaded.studies} studies "
              f"in Orthanc")
        if in_ehr != loaded.studies:
            print("demo: the backfill did not bring every study into the EHR", file=sys.stderr)
            return 1
        serve = subprocess.Popen(_cli("serve"), env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        fhir = stack.hapi.fhir_url
        first = studies[0].truth
        postman = postman_env.prepare_demo(
            workdir / "postman", bridge=api, ehr=ehr, fhir_url=fhir,
            truths=[s.truth for s in [*studies, *real]], admin_password=admin_password,
            stow_token=stow_token, webhook_secret=webhook_secret)
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
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
