"""``imaging-bridge preview`` of a Part-10 file with non-numeric IS and DS values maps it, as
the sync maps the same data from the archive: the value is left out with a warning naming
its tag, never the whole file refused (issue 20 item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
import typer
from mapping_helpers import DEFAULT_YAML
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from typer.testing import CliRunner

from bridge.cli_mapping import register

app = typer.Typer()
register(app)
runner = CliRunner()


def _raw(ds: Dataset, keyword: str, vr: str, text: bytes) -> None:
    # pydicom refuses "abc" as an IS or DS value; a raw element is written as it is
    tag = Tag(keyword)
    ds[tag] = RawDataElement(tag, vr, len(text), text, 0, False, True)


@pytest.fixture
def bad_numbers(tmp_path: Path) -> Path:
    """CT_small.dcm with SeriesNumber 'abc' (IS), SliceThickness '1,5' (DS, a decimal comma)
    and, inside ReferencedImageSequence, PixelSpacing '0,5\\0,5' (DS) and
    ReferencedFrameNumber 'x1' (IS)."""
    source = get_testdata_file("CT_small.dcm")
    assert source is not None
    ds = pydicom.dcmread(source)
    _raw(ds, "SeriesNumber", "IS", b"abc ")
    _raw(ds, "SliceThickness", "DS", b"1,5 ")
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    _raw(item, "PixelSpacing", "DS", b"0,5\\0,5 ")
    _raw(item, "ReferencedFrameNumber", "IS", b"x1")
    ds.ReferencedImageSequence = [item]
    path = tmp_path / "bad-numbers.dcm"
    ds.save_as(path)
    return path


def test_preview_of_a_part10_file_with_non_numeric_is_and_ds_maps_with_a_warning(
    bad_numbers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRIDGE_CONFIG_FILE", raising=False)
    result = runner.invoke(app, ["preview", str(bad_numbers), "--json", "--offline",
                                 "-m", str(DEFAULT_YAML)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    [series] = document["imagingStudy"]["series"]
    assert "number" not in series  # left out, not guessed
    assert series["instance"][0]["number"] == 1  # the rest of the file is mapped
    by_tag = {w["tag"]: w for w in document["warnings"]}
    assert by_tag["(0020,0011) SeriesNumber"]["code"] == "invalid-integer"
    assert by_tag["(0020,0011) SeriesNumber"]["value"] == "abc"


def test_preview_table_names_the_tag_of_a_non_numeric_is(
    bad_numbers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRIDGE_CONFIG_FILE", raising=False)
    result = runner.invoke(app, ["preview", str(bad_numbers), "--offline",
                                 "-m", str(DEFAULT_YAML)])
    assert result.exit_code == 0, result.output
    assert "Mapping warnings" in result.output
    # the table may wrap a cell: the tag's parts and the code, each
    assert "(0020,0011)" in result.output and "SeriesNumber" in result.output
    assert "invalid-integer" in result.output
