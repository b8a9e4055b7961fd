"""README command 1, the demo (docker/local/demo.py), against its own real servers.

Run 1 keeps the demo up and checks, against its servers, what it says it shows: every
generated study in the EHR; the legacy PACS's studies migrated into Orthanc and synced;
the worklist's scheduled orders answered to DCMTK's ``findscu -W`` (and only those); the
modality simulator's order performed, its study basedOn the order and the order
completed; dose SRs and reports as DiagnosticReports and dose Observations; the synced
studies' manifests as DocumentReferences in the registry, found by ``sharing outside``.

Run 2, in the same work folder (``--no-rooms``: the sync alone, to keep the test short),
brings every study into the EHR again (new, empty servers; the same studies), which it
once did not: the kept state store took every study for synced already and the second EHR
stayed empty."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest

from samples.real_images import REAL_IMAGES
from tests.support.waits import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "docker" / "local"))
import demo_rooms  # noqa: E402

STUDIES = 6
LEGACY = 3
SEED = 2026  # the demo's default
READY = "Ctrl-C stops everything."
NO_CACHE = {"Cache-Control": "no-cache"}
KOS = "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection Document Storage


def _command(workdir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "docker" / "local" / "demo.py"),
            "--studies", str(STUDIES), "--legacy-studies", str(LEGACY),
            "--record-studies", "2", "--workdir", str(workdir), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


class RunningDemo:
    """The demo up until :meth:`stop`, with what it printed."""

    def __init__(self, workdir: Path) -> None:
        self.proc = subprocess.Popen(_command(workdir), cwd=REPO_ROOT, env=_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.out = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while READY not in self.out:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"the demo ended:\n{self.out[-5000:]}"
            self.out += line
        return self.out

    def since_ready(self) -> str:
        """What the demo printed after its URLs, so far (serve's log lines)."""
        rest = []
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                rest.append(line)
        return "".join(rest)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[RunningDemo]:
    running = RunningDemo(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _printed(out: str, label: str) -> str:
    """The rest of the line the demo printed after ``label``."""
    found = re.search(rf"^  {re.escape(label)}\s+(.+)$", out, re.MULTILINE)
    assert found is not None, f"{label!r} not printed:\n{out}"
    return found.group(1).strip()


def _url(out: str, label: str) -> str:
    return _printed(out, label).split()[0]


def _search(url: str, **params: str) -> list[dict[str, Any]]:
    resp = httpx.get(url, params=params, headers=NO_CACHE, timeout=60)
    resp.raise_for_status()
    return [e["resource"] for e in resp.json().get("entry", [])]


def _held(out: str) -> tuple[str, str]:
    held = re.search(r"the EHR holds (\d+) ImagingStudies for the (\d+) studies", out)
    assert held is not None, out
    return held.group(1), held.group(2)


TOTAL = STUDIES + len(REAL_IMAGES) + LEGACY  # generated, real images, migrated


def _assert_migrated(out: str, workdir: Path, fhir: str) -> None:
    assert f"legacy-pacs: migrated {LEGACY} studies this run" in out, out
    orthanc = json.loads((workdir / "stack.json").read_text())["orthanc"]
    auth = (orthanc["username"], orthanc["password"])
    for study in demo_rooms.legacy_studies(STUDIES, LEGACY, seed=SEED):
        uids = {str(ds.SOPInstanceUID) for ds in study.instances()}
        resp = httpx.get(f"{orthanc['dicomweb_url']}/studies/{study.study_uid}/instances",
                         auth=auth, timeout=60)
        resp.raise_for_status()
        # the study's instances, and its sharing manifest (a KOS, in a series of its own)
        archived = {i["00080018"]["Value"][0] for i in resp.json()
                    if i["00080016"]["Value"][0] != KOS}
        assert archived == uids
        [synced] = _search(f"{fhir}/ImagingStudy",
                           identifier=f"urn:dicom:uid|urn:oid:{study.study_uid}")
        series = {str(ds.SeriesInstanceUID) for ds in study.instances()}
        assert series <= {s["uid"] for s in synced["series"]}


def _assert_worklist(out: str, tmp_path: Path) -> list[str]:
    scheduled = re.search(r"scheduled \d+ orders for the worklist \(([^)]*)\)", out)
    assert scheduled is not None, out
    accessions = scheduled.group(1).split(", ")
    command = shlex.split(_printed(out, "worklist (findscu)"))
    answers = tmp_path / "findscu"
    answers.mkdir()
    done = subprocess.run([*command, "-X", "-od", str(answers)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    found = sorted(str(pydicom.dcmread(p).AccessionNumber) for p in answers.glob("rsp*"))
    # today's orders, and none of the performed studies' (completed) orders
    assert found == sorted(accessions)
    return accessions


def _assert_performed(demo: RunningDemo, out: str, fhir: str, accession: str) -> None:
    command = shlex.split(_printed(out, "modality simulator").split("   (")[0])
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    system = demo_rooms.ACCESSION_SYSTEMS["RIS_A"]
    [order] = _search(f"{fhir}/ServiceRequest", identifier=f"{system}|{accession}")

    seen: dict[str, Any] = {}

    def linked_and_completed() -> bool:
        seen["studies"] = len(_search(f"{fhir}/ImagingStudy",
                                      basedon=f"ServiceRequest/{order['id']}"))
        seen["order"] = _search(f"{fhir}/ServiceRequest", _id=order["id"])[0]["status"]
        return seen == {"studies": 1, "order": "completed"}

    try:
        wait_until(linked_and_completed, timeout=90, every=0.5,
                   what="the performed order's study linked and the order completed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {seen}; simulator: {done.stdout}\n"
                             f"{demo.since_ready()[-8000:]}") from exc


def _assert_record(out: str) -> None:
    reports = _search(_url(out, "reports"))
    assert reports and all(r["imagingStudy"] for r in reports)
    doses = _search(_url(out, "dose summaries"))
    assert doses and all(o["partOf"] for o in doses)
    assert re.search(r"the EHR holds [1-9]\d* DiagnosticReports and [1-9]\d* dose", out)


def _assert_shared(out: str) -> None:
    manifests = re.search(r"the registry holds (\d+) current imaging manifests", out)
    assert manifests is not None and int(manifests.group(1)) == TOTAL, out
    documents = _search(_url(out, "registry manifests"))
    assert documents and all(d["content"][0]["attachment"]["url"] for d in documents)
    command = shlex.split(_printed(out, "outside studies"))
    env = {**_env(), **dict(a.split("=", 1) for a in command if a.startswith("BRIDGE_"))}
    args = [a for a in command if not a.startswith("BRIDGE_")]
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = re.search(r"(\d+) outside studies, 0 documents could not be read", done.stdout)
    assert listed is not None and int(listed.group(1)) >= 1, done.stdout


def test_the_demo_shows_every_room_on_real_servers_and_runs_twice(
    demo: RunningDemo, tmp_path: Path,
) -> None:
    out = demo.wait_ready(timeout=900)
    print(re.findall(r"^demo: set up in .*$", out, re.MULTILINE))  # the cost of each step
    assert _held(out) == (str(TOTAL), str(TOTAL))
    assert re.search(r"EHR launch page\s+http://127\.0\.0\.1:\d+/launch", out)
    assert re.search(r"outside imaging\s+http://127\.0\.0\.1:\d+/app/outside", out)
    fhir = _url(out, "EHR ImagingStudies").split("/ImagingStudy")[0]
    _assert_migrated(out, tmp_path, fhir)
    accessions = _assert_worklist(out, tmp_path)
    _assert_record(out)
    _assert_shared(out)
    _assert_performed(demo, out, fhir, accessions[0])
    demo.stop()

    # run 2, the same work folder: every study again
    again = subprocess.run(_command(tmp_path, "--exit-after-setup", "--no-rooms"),
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
                           env=_env())
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    synced = str(TOTAL - LEGACY)  # no legacy PACS
    assert _held(again.stdout) == (synced, synced)
    print(re.findall(r"^demo: set up in .*$", again.stdout, re.MULTILINE))
    assert "Try, in another shell" not in again.stdout
    assert (tmp_path / "bridge-state.db").exists()
