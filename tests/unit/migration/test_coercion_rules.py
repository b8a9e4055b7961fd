"""mappings/migration.yaml: the repository's example loads, and a bad site file is refused
with every problem named by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import MappingConfigError
from bridge.migration.coercion_rules import DEFAULT_MIGRATION_MAPPING, load_migration_mapping


def test_the_repository_example_loads() -> None:
    mapping = load_migration_mapping(DEFAULT_MIGRATION_MAPPING)
    rules = mapping.rules_for("example-pacs")
    assert rules is not None and rules.accession_prefix == "A-"
    assert mapping.rules_for("no-such-source") is None


def test_a_source_whose_rules_change_nothing_has_none(tmp_path: Path) -> None:
    file = tmp_path / "m.yaml"
    file.write_text("version: 1\nsources:\n  pacs: {}\n")
    assert load_migration_mapping(file).rules_for("pacs") is None


def test_every_problem_is_named_by_file_line_and_field(tmp_path: Path) -> None:
    file = tmp_path / "site.yaml"
    file.write_text(
        "version: 1\n"
        "sources:\n"
        "  pacs:\n"
        "    accession_prefix: THIS-IS-FAR-TOO-LONG\n"
        "    issuer_of_patient_id:\n"
        "      value: SITE\n"
        "      qualifiers:\n"
        "        universal_entity_id_type: OID\n"
        "    institution_nmes: {}\n"
        "    patient_ids:\n"
        "      SA-1: 123\n")
    with pytest.raises(MappingConfigError) as caught:
        load_migration_mapping(file)
    lines = str(caught.value).splitlines()
    assert any(line.startswith(f"{file}:4 sources.pacs.accession_prefix:")
               and "16" in line for line in lines), lines
    assert any(line.startswith(
        f"{file}:8 sources.pacs.issuer_of_patient_id.qualifiers.universal_entity_id_type:")
        for line in lines), lines
    assert any(line.startswith(f"{file}:9 sources.pacs.institution_nmes:") for line in lines)
    assert any(line.startswith(f"{file}:11 sources.pacs.patient_ids.SA-1:") for line in lines)
    assert len(lines) == 4
