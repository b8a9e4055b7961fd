"""mappings/worklist.yaml is validated; every problem names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import MappingConfigError
from bridge.worklist.loader import DEFAULT_WORKLIST_MAPPING, load_worklist_mapping


def test_the_default_worklist_mapping_loads() -> None:
    mapping = load_worklist_mapping()
    assert mapping.station_fields == ("performerType", "locationCode")
    assert {rule.modality for rule in mapping.stations} >= {"CT", "MR"}


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_WORKLIST_MAPPING.read_text("utf-8")
    assert old in text
    path = tmp_path / "site.yaml"
    path.write_text(text.replace(old, new, 1), "utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
                if needle in line)


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ("station_ae: CT_SCANNER_1", "station_ae: CT\\\\SCANNER", "stations[0].station_ae",
     "not an AE title"),
    ("modality: MR", "modality: mr", "stations[1].modality", "not a Code String"),
    ("timezone: UTC", "timezone: Mars/Olympus", "timezone", "unknown time zone"),
    ("requested_procedure_id_from: accession", "requested_procedure_id_from: mrn",
     "requested_procedure_id_from", "Input should be"),
    ("station_fields: [", "station_feilds: [", "station_feilds", "unknown key"),
])
def test_a_bad_value_is_reported_with_file_line_and_key(
    tmp_path: Path, old: str, new: str, key: str, message: str
) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(MappingConfigError) as err:
        load_worklist_mapping(path)
    line = _line_of(path, new)
    assert f"{path}:{line} {key}: {message}" in str(err.value)


def test_a_duplicate_station_row_is_reported(tmp_path: Path) -> None:
    path = _broken(tmp_path, "code: MR\n", "code: CT\n")
    with pytest.raises(MappingConfigError, match="two rows for performerType"):
        load_worklist_mapping(path)


def test_a_missing_study_uid_namespace_is_reported(tmp_path: Path) -> None:
    path = _broken(tmp_path, '  namespace: "6f1c1b52-0f49-4c8e-9a57-0d7c2f3a1e10"\n', "")
    with pytest.raises(MappingConfigError, match=r"study_uid.namespace: required key"):
        load_worklist_mapping(path)
