"""The generator's catalogue (samples/catalogue/*.json) is read, cross-checked, and a broken
file is refused with a message naming the file and the entry."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from samples.catalogue import CATALOGUE, CatalogueError, load_catalogue

SHIPPED = Path(__file__).resolve().parents[2] / "samples" / "catalogue"


def _broken(tmp_path: Path, name: str, edit: Callable[[Any], None]) -> Path:
    for path in SHIPPED.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    data = json.loads((tmp_path / name).read_text("utf-8"))
    edit(data)
    (tmp_path / name).write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return tmp_path


def test_shipped_catalogue_loads_and_is_consistent() -> None:
    assert load_catalogue(SHIPPED) == CATALOGUE
    assert {p.modality for p in CATALOGUE.procedures} == set(CATALOGUE.sop_class_by_modality)
    assert {p.body_part for p in CATALOGUE.procedures} <= set(CATALOGUE.odd_body_parts)


def _set(path: list[Any], value: Any) -> Callable[[Any], None]:
    def edit(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value

    return edit


def _delete(path: list[Any]) -> Callable[[Any], None]:
    def edit(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        del data[path[-1]]

    return edit


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("procedures.json", _set(["procedures", 0, "modality"], "XA"),
         "procedures.json CTCHEST: unknown modality XA"),
        ("procedures.json", _set(["procedures", 0, "reasons"], ["12345"]),
         "procedures.json CTCHEST: reasons ['12345'] are not in 'reasons'"),
        ("procedures.json", _set(["procedures", 0, "weight"], "3"),
         "procedures.json CTCHEST: 'weight' must be of type int, not '3'"),
        ("procedures.json", _set(["procedures", 0, "body_part"], "ELBOW"),
         "procedures.json CTCHEST: body part ELBOW has no entry in body_parts.json"),
        ("modalities.json", _delete(["draw_weights", "MG"]),
         "modalities.json: draw_weights must name every modality once"),
        ("names.json", _delete(["patients", "latin1", "given", "F"]),
         "names.json latin1 given: missing 'F'"),
        ("sites.json", _delete(["sites", "HOSP_B", "accession_system"]),
         "sites.json HOSP_B: missing 'accession_system'"),
    ],
)
def test_broken_catalogue_is_refused_naming_the_entry(
    tmp_path: Path, name: str, edit: Callable[[Any], None], message: str
) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(_broken(tmp_path, name, edit))
    assert str(caught.value) == message


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    directory = _broken(tmp_path, "sites.json", lambda data: None)
    (directory / "sites.json").write_text("{not json", "utf-8")
    with pytest.raises(CatalogueError, match=r"sites.json: cannot read the catalogue file"):
        load_catalogue(directory)
