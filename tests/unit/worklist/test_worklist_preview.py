"""``python -m bridge.worklist.preview`` shows the item, or why the order is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worklist_helpers import GOLDEN, SITE_MAPPING, golden_input

from bridge.worklist.preview import main


def test_preview_prints_the_golden_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    data = golden_input("ct_order")
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": data["serviceRequest"]}, {"resource": data["patient"]}]}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), "utf-8")
    assert main([str(path), "--mapping", str(SITE_MAPPING)]) == 0
    expected = json.loads((GOLDEN / "ct_order.item.json").read_text("utf-8"))
    assert json.loads(capsys.readouterr().out) == expected


def test_preview_names_the_field_of_a_refused_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = golden_input("ct_order")
    del data["serviceRequest"]["subject"]
    order, patient = tmp_path / "sr.json", tmp_path / "pat.json"
    order.write_text(json.dumps(data["serviceRequest"]), "utf-8")
    patient.write_text(json.dumps(data["patient"]), "utf-8")
    assert main([str(order), str(patient)]) == 1
    refused = json.loads(capsys.readouterr().out)["refused"]
    assert refused["field"] == "ServiceRequest.subject"


def test_preview_reports_a_bad_mapping_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stations: []\nstudy_uid: {namespace: not-a-uuid}\n", "utf-8")
    order = tmp_path / "sr.json"
    order.write_text("{}", "utf-8")
    assert main([str(order), "--mapping", str(bad)]) == 2
    assert f"{bad}:2 study_uid.namespace:" in capsys.readouterr().err
