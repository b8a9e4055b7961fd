"""Preview a worklist mapping without any server: ServiceRequest + Patient JSON files in,
the worklist item out as DICOM JSON (PS3.18 F.2), or the reason the order is refused.

    python -m bridge.worklist.preview order.json patient.json [--mapping site.yaml]

The order file may also be a FHIR Bundle holding both resources (then omit the patient).
Not yet an ``imaging-bridge`` sub-command: the CLI is shared wiring (docs/worklist.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge.errors import MappingConfigError
from bridge.worklist.errors import OrderDataError
from bridge.worklist.loader import DEFAULT_WORKLIST_MAPPING, load_worklist_mapping
from bridge.worklist.mapper import map_order
from bridge.worklist.model import WorklistMapping


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _resources(order_file: Path, patient_file: Path | None) -> tuple[dict[str, Any],
                                                                     dict[str, Any] | None]:
    data = _read(order_file)
    if data.get("resourceType") == "Bundle":
        found = {e["resource"]["resourceType"]: e["resource"]
                 for e in data.get("entry") or () if isinstance(e.get("resource"), dict)}
        return found.get("ServiceRequest", {}), found.get("Patient")
    return data, _read(patient_file) if patient_file else None


def preview(order: dict[str, Any], patient: dict[str, Any] | None,
            mapping: WorklistMapping) -> dict[str, Any]:
    """The item as DICOM JSON, or ``{"refused": {"field": ..., "reason": ...}}``."""
    try:
        item = map_order(order, patient, mapping)
    except OrderDataError as exc:
        return {"refused": {"field": exc.field, "kind": exc.kind, "reason": exc.message}}
    result: dict[str, Any] = item.to_json_dict()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge.worklist.preview",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("order", type=Path)
    parser.add_argument("patient", type=Path, nargs="?")
    parser.add_argument("--mapping", type=Path, default=DEFAULT_WORKLIST_MAPPING)
    args = parser.parse_args(argv)
    try:
        mapping = load_worklist_mapping(args.mapping)
    except MappingConfigError as exc:
        sys.stderr.write(f"{exc.message}\n")
        return 2
    order, patient = _resources(args.order, args.patient)
    out = preview(order, patient, mapping)
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return 1 if "refused" in out else 0


if __name__ == "__main__":
    raise SystemExit(main())
