"""README command 1, the demo (docker/local/demo.py), against its own real servers: it
brings every generated study into the EHR, and does so again when run a second time in the
same work folder (new, empty servers; the same studies), which it once did not: the kept
state store took every study for synced already and the second EHR stayed empty."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from samples.real_images import REAL_IMAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
STUDIES = 6


def _run_demo(workdir: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "docker" / "local" / "demo.py"), "--exit-after-setup",
         "--studies", str(STUDIES), "--workdir", str(workdir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_demo_brings_every_study_into_the_ehr_and_again_when_run_twice(
    tmp_path: Path,
) -> None:
    for run in (1, 2):
        out = _run_demo(tmp_path)
        held = re.search(r"the EHR holds (\d+) ImagingStudies for the (\d+) studies", out)
        assert held is not None, out
        total = STUDIES + len(REAL_IMAGES)  # the generated studies and the real images
        assert held.groups() == (str(total), str(total)), f"run {run}: {held.group(0)}"
        assert "=== imaging-fhir-bridge demo is up ===" in out
        assert re.search(r"EHR launch page\s+http://127\.0\.0\.1:\d+/launch", out)
        assert (tmp_path / "bridge-state.db").exists()
