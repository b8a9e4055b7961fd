"""mappings/*.yaml loading: typed, merged, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from mapping_helpers import DEFAULT_YAML, SITE_YAML

from bridge.errors import MappingConfigError
from bridge.mapping import load_mapping
from bridge.mapping.loader import deep_merge


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_and_site_example_load() -> None:
    mapping = load_mapping([DEFAULT_YAML, SITE_YAML])
    assert mapping.timezone == "Europe/Berlin"
    assert mapping.patient.policy == "create"
    assert mapping.patient.issuers["HOSP_A"].system == "https://hospital-a.example.org/fhir/sid/mrn"
    assert mapping.procedure_codes["99HOSPA"]["CTCHEST"][0].code == "24627-2"
    assert mapping.sources == (str(DEFAULT_YAML), str(SITE_YAML))


def test_site_override_merges_key_by_key(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        "site-a.yaml",
        "patient:\n  issuers:\n    HOSP_C:\n      system: https://c.example.org/mrn\n",
    )
    mapping = load_mapping([DEFAULT_YAML, site])
    assert set(mapping.patient.issuers) == {"HOSP_A", "HOSP_B", "HOSP_C"}
    assert mapping.patient.policy == "match"  # untouched default


def test_error_names_file_line_and_key(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        "site-a.yaml",
        "version: 1\npatient:\n  issuers:\n    HOSP_A:\n      system: not a uri\n",
    )
    with pytest.raises(MappingConfigError) as caught:
        load_mapping([DEFAULT_YAML, site])
    assert caught.value.message.startswith(
        f"{site}:5 patient.issuers.HOSP_A.system: not a URI: 'not a uri' is neither")


def test_unknown_key_and_bad_value_are_all_reported(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        "site.yaml",
        "instances:\n  detail: partial\n  max_instances_full: -1\nelemnts: {}\n",
    )
    with pytest.raises(MappingConfigError) as caught:
        load_mapping([DEFAULT_YAML, site])
    lines = caught.value.message.splitlines()
    assert f"{site}:4 elemnts: unknown key" in lines
    assert any(line.startswith(f"{site}:2 instances.detail:") for line in lines)
    assert any(line.startswith(f"{site}:3 instances.max_instances_full:") for line in lines)


def test_unknown_time_zone_is_an_error(tmp_path: Path) -> None:
    site = write(tmp_path, "tz.yaml", "timezone: Mars/Olympus\n")
    with pytest.raises(MappingConfigError, match=r"tz.yaml:1 timezone: unknown IANA time zone"):
        load_mapping([DEFAULT_YAML, site])


def test_body_part_map_must_target_a_known_term(tmp_path: Path) -> None:
    site = write(tmp_path, "bp.yaml", "body_parts:\n  Brust: CHESTY\n")
    with pytest.raises(MappingConfigError, match=r"bp.yaml:2 body_parts.Brust: 'CHESTY' is not"):
        load_mapping([DEFAULT_YAML, site])


def test_list_errors_name_the_index(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        "codes.yaml",
        "procedure_codes:\n  99X:\n    A1:\n      - system: http://loinc.org\n        code: ''\n",
    )
    with pytest.raises(MappingConfigError) as caught:
        load_mapping([DEFAULT_YAML, site])
    assert caught.value.message.startswith(f"{site}:5 procedure_codes.99X.A1[0].code:")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    site = write(tmp_path, "broken.yaml", "patient:\n  policy: [match\n")
    with pytest.raises(MappingConfigError, match=r"broken.yaml:\d+ not valid YAML"):
        load_mapping([site])


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    site = write(tmp_path, "dup.yaml", "timezone: UTC\ntimezone: Europe/Berlin\n")
    with pytest.raises(MappingConfigError, match=r"dup.yaml:2 timezone: duplicate key"):
        load_mapping([site])


def test_yes_no_and_dates_stay_text(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        "text.yaml",
        "body_parts:\n  NO: NECK\n  2024-01-01: HEAD\ncoding_schemes:\n  99A: urn:x:y\n",
    )
    mapping = load_mapping([DEFAULT_YAML, site])
    assert mapping.body_parts == {"NO": "NECK", "2024-01-01": "HEAD"}


def test_null_resets_a_key_to_its_default(tmp_path: Path) -> None:
    site = write(tmp_path, "reset.yaml", "timezone: null\n")
    assert load_mapping([SITE_YAML.parent / "default.yaml", SITE_YAML, site]).timezone is None


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(MappingConfigError, match="cannot read"):
        load_mapping([tmp_path / "nope.yaml"])


def test_deep_merge_replaces_lists_and_scalars() -> None:
    merged = deep_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "d": None})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": None}
