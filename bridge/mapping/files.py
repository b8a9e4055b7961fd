"""Local inputs for preview and tests: DICOM Part-10 files and DICOM JSON files.

Part-10 files are read with pydicom, which decodes text with the file's SpecificCharacterSet
(0008,0005) (PS3.5 6.1, including ISO 2022 code extensions), and converted to DICOM JSON
(PS3.18 F.2) without pixel data or other bulk data.  JSON files hold one dataset or a list
of datasets (the body of a WADO-RS metadata response).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import DataElement
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from bridge.errors import DicomDataError
from bridge.mapping import tags as t
from bridge.mapping.peek import first_str


def _read(path: Path) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        # a data set without the Part-10 header (no preamble / "DICM"): accept it when what
        # is read looks like a SOP instance, not like an arbitrary file
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if "SOPClassUID" not in ds and "StudyInstanceUID" not in ds:
            raise
        return ds


def _no_bulk_data(_elem: DataElement) -> str:
    return ""


def _element_json(elem: DataElement) -> dict[str, Any]:
    if elem.VR == "SQ":
        # item by item (PS3.18 F.2.2): pydicom converts a sequence in one go, so one bad
        # IS/DS in an item (a decimal comma in PixelSpacing) would otherwise fail the file
        return {"vr": "SQ", "Value": [_to_json(item) for item in elem.value]}
    try:
        found: dict[str, Any] = elem.to_json_dict(_no_bulk_data, 1 << 30)
        return found
    except ValueError:
        if elem.VR not in ("IS", "DS"):
            raise
    # pydicom keeps an IS/DS it cannot convert ("abc", "1,5") as text but cannot write it as
    # a JSON number (PS3.18 F.2.3.1): pass the text on, for the mapping to report under its
    # tag (values.py: invalid-integer) and leave out, instead of refusing the whole file; an
    # IS/DS the mapping does not read is ignored, as when the archive sends it
    values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
    return {"vr": elem.VR, "Value": [None if x is None else str(x) for x in values]}


def _to_json(ds: pydicom.Dataset) -> dict[str, Any]:
    # what Dataset.to_json_dict does, element by element, so one bad IS does not fail all
    return {f"{int(elem.tag):08X}": _element_json(elem) for elem in ds}


def _dicom_json(path: Path) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            # undecodable bytes are replaced by U+FFFD, which the mapping reports per tag
            warnings.simplefilter("ignore")
            ds = _read(path)
            data = _to_json(ds)
    except (InvalidDicomError, OSError, ValueError, TypeError, KeyError) as exc:
        raise DicomDataError(f"{path}: not a readable DICOM file ({exc})") from exc
    # keep the file free of bulk data references and binary payloads
    return {
        tag: element
        for tag, element in data.items()
        if not ("BulkDataURI" in element or "InlineBinary" in element)
    }


def _json_file(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DicomDataError(f"{path}: not a readable DICOM JSON file ({exc})") from exc
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise DicomDataError(f"{path}: DICOM JSON must be an object or a list of objects")
    return items


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            out.append(path)
    return out


def map_files(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Read DICOM files, DICOM JSON files and directories of them into instance datasets.

    Files ending in ``.json`` are DICOM JSON; anything else is read as Part 10.  Raises
    :class:`~bridge.errors.DicomDataError` for a file that is neither.
    """
    instances: list[dict[str, Any]] = []
    for path in _expand(paths):
        if path.suffix.lower() == ".json":
            instances.extend(_json_file(path))
        else:
            instances.append(_dicom_json(path))
    return instances


def group_by_study(instances: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Split instance datasets by Study Instance UID (datasets without one under "")."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for ds in instances:
        groups.setdefault(first_str(ds, t.STUDY_INSTANCE_UID) or "", []).append(ds)
    return groups
