"""The generated mapping reference is up to date, and the mapping commands work."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import typer
from mapping_helpers import DEFAULT_YAML, GOLDEN, REPO_ROOT, SITE_YAML
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from bridge.cli_mapping import register
from bridge.config import ArchiveSettings
from bridge.mapping import load_mapping, load_tables
from bridge.mapping.docgen import DEFAULT_DOC, render_reference
from tests.support.fake_archive import FakeArchive

app = typer.Typer()
register(app)
runner = CliRunner()


def test_committed_mapping_reference_is_up_to_date() -> None:
    mapping = load_mapping([DEFAULT_YAML])
    expected = render_reference(mapping, load_tables(mapping.tables_dir))
    assert DEFAULT_DOC == REPO_ROOT / "docs" / "mapping-reference.md"
    assert DEFAULT_DOC.read_text(encoding="utf-8") == expected, (
        "docs/mapping-reference.md is stale: run `imaging-bridge mappings doc`"
    )


def test_reference_lists_every_table_entry_and_site_maps() -> None:
    mapping = load_mapping([DEFAULT_YAML, SITE_YAML])
    text = render_reference(mapping, load_tables(mapping.tables_dir))
    assert "| `CHEST` | `816094009` | Chest |" in text
    assert "| `Thorax` | `CHEST` |" in text
    assert "`99HOSPA` | `CTCHEST` | `http://loinc.org#24627-2` CT Chest" in text
    assert "**Europe/Berlin**" in text


def test_doc_check_passes_on_the_committed_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mappings", "doc", "--check"])
    assert result.exit_code == 0, result.output
    stale = tmp_path / "ref.md"
    stale.write_text("old\n", encoding="utf-8")
    assert runner.invoke(app, ["mappings", "doc", "--check", "--output", str(stale)]).exit_code == 1
    assert runner.invoke(app, ["mappings", "doc", "--output", str(stale)]).exit_code == 0
    assert stale.read_text(encoding="utf-8") == DEFAULT_DOC.read_text(encoding="utf-8")


def test_validate_accepts_the_site_example_and_rejects_a_broken_file(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["mappings", "validate", str(SITE_YAML)])
    assert ok.exit_code == 0 and "ok" in ok.output
    broken = tmp_path / "site-a.yaml"
    broken.write_text("accession:\n  default_system: nope\n", encoding="utf-8")
    bad = runner.invoke(app, ["mappings", "validate", str(broken)])
    assert bad.exit_code == 1
    assert "site-a.yaml:2 accession.default_system: not a URI" in bad.output.replace("\n", "")


def test_preview_of_files_prints_resources_as_json() -> None:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    result = runner.invoke(
        app,
        ["preview", path, "--json", "--mapping", str(DEFAULT_YAML), "--mapping", str(SITE_YAML)],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["imagingStudy"]["resourceType"] == "ImagingStudy"
    assert document["endpoint"]["address"] == "http://archive.invalid/dicom-web"


def test_preview_of_a_dicom_json_file(tmp_path: Path) -> None:
    instances = json.loads((GOLDEN / "garbage_values.in.json").read_text(encoding="utf-8"))[
        "instances"
    ]
    path = tmp_path / "study.json"
    path.write_text(json.dumps(instances), encoding="utf-8")
    result = runner.invoke(app, ["preview", str(path), "-m", str(DEFAULT_YAML)])
    assert result.exit_code == 0, result.output
    assert "Mapping warnings" in result.output and "BodyPartExamined" in result.output


def test_preview_of_a_missing_file_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["preview", str(tmp_path / "a.dcm"), str(tmp_path / "b.dcm")])
    assert result.exit_code == 2


class FakeSettings:
    """Just what the commands read of bridge.config.Settings."""

    def __init__(self) -> None:
        self.archives = [SimpleNamespace(name="fake", base_url="http://fake.example.org/dicom-web")]
        self.gateway = SimpleNamespace(enabled=False)
        self.mapping = SimpleNamespace(files=[DEFAULT_YAML])

    def archive_named(self, name: str) -> SimpleNamespace:
        return self.archives[0]


def _fake_archive(monkeypatch: pytest.MonkeyPatch) -> FakeArchive:
    """Two golden studies in a :class:`FakeArchive` behind the archive client the
    commands build."""
    from golden_cases import ct_full, mr_knee_laterality

    import bridge.archive.client
    import bridge.cli_mapping as cli

    archive = FakeArchive()
    for uid, build in (("1.2.3.1", ct_full), ("1.2.3.2", mr_knee_laterality)):
        instances = build()
        for instance in instances:
            instance["0020000D"] = {"vr": "UI", "Value": [uid]}
        archive.instances[uid] = instances
    client = bridge.archive.client.DicomwebClient
    monkeypatch.setattr(bridge.archive.client, "DicomwebClient", lambda settings: client(
        ArchiveSettings(name=settings.name, base_url=settings.base_url),
        transport=httpx.MockTransport(archive.handler)))
    monkeypatch.setattr(cli, "_settings", lambda config: FakeSettings())
    monkeypatch.setattr(
        cli, "_mapping_files", lambda config, explicit: list(explicit or [DEFAULT_YAML])
    )
    return archive


def test_preview_of_a_study_uid_fetches_from_the_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    uid = next(iter(_fake_archive(monkeypatch).instances))
    result = runner.invoke(app, ["preview", uid, "--json", "--offline"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["studyInstanceUid"] == uid
    assert document["endpoint"]["address"] == "http://fake.example.org/dicom-web"


def test_mappings_diff_reports_study_by_study(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_archive(monkeypatch)
    result = runner.invoke(
        app, ["mappings", "diff", "--proposed", str(SITE_YAML), "--mode", "layer", "--studies", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "2 of 2 studies would change" in result.output
    assert "procedureCode" in result.output and "bodySite" in result.output
