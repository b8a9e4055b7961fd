"""The KOS test cases: a generated study and the manifest built from it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from bridge.sharing.kos import build_manifest, manifest_json
from samples.generator import GeneratedStudy, generate_studies
from tests.unit.sharing.sharing_helpers import policy

GOLDEN = Path(__file__).parent / "golden"
GATEWAY = "https://site-a.example.org/dicom-web"
CREATED = dt.datetime(2026, 12, 8, 1, 0, tzinfo=dt.UTC)


def generated(index: int = 1, *, seed: int = 7, profile: str = "small") -> GeneratedStudy:
    """Study ``index`` of a fixed generator draw (index 1 of seed 7: two CR series)."""
    studies = list(generate_studies(index + 1, seed=seed, profile=profile))
    return studies[index]


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"policy": policy(), "wado_rs_base": GATEWAY, "created": CREATED, **kwargs}


def kos_json(instances: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """The manifest as DICOM JSON (what is written and published)."""
    return manifest_json(instances, **_options(kwargs))


def manifest_of(instances: list[dict[str, Any]], **kwargs: Any) -> Dataset:
    """The manifest as a pydicom Dataset (for reading attributes by keyword)."""
    return build_manifest(instances, **_options(kwargs))


def read_golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def write_golden(name: str, data: Any) -> None:
    """Regenerate a golden file (``python -m tests.unit.sharing.kos_cases``), then review
    its diff before committing it."""
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (GOLDEN / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_golden("kos_seed7_study1.json", kos_json(generated().to_dicom_json()))
