"""A small DICOM Part 10 writer: Explicit VR Little Endian data elements, file meta, files.

Going through pydicom's attribute API for ~70 elements costs milliseconds per instance, far
too slow for tens of thousands of instances.  So the content of an instance is described once
as plain (tag, VR, value) tuples, split into study-, series- and instance-level parts, and
encoded by a small Explicit VR Little Endian encoder (PS3.5 section 7.1.2): study and series
parts are encoded once and only the few instance elements (UID, number, position, view,
pixels) are encoded per instance.  ``reference=True`` builds the very same tuples into
pydicom Datasets instead; the unit tests check that pydicom then writes identical bytes.
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Iterable
from typing import Any

import pydicom
from pydicom import config as dicom_config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

__all__ = [
    "CODECS",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "PREAMBLE",
    "Element",
    "el",
    "encode_element",
    "encode_elements",
    "file_meta_bytes",
    "file_meta_elements",
    "tag_vr",
    "to_dataset",
    "write_part10",
]

# A fixed UUID-derived UID (PS3.5 section B.2) naming this generator as the implementation.
IMPLEMENTATION_CLASS_UID = "2.25.228406425364786254325125316398733461212"
IMPLEMENTATION_VERSION_NAME = "IFB_SAMPLES_1"

Element = tuple[int, str, Any]

PREAMBLE = b"\x00" * 128
_LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT"})
#: VRs whose text is encoded with the SpecificCharacterSet (PS3.5 section 6.1.2.3)
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "PN", "UC", "UT"})
CODECS: dict[str | None, str] = {None: "ascii", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf-8"}
_ITEM_TAG = struct.pack("<HH", 0xFFFE, 0xE000)


@functools.cache
def tag_vr(keyword: str) -> tuple[int, str]:
    """(tag, dictionary VR) of a DICOM keyword (PS3.6)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag, dictionary_VR(tag)


def el(keyword: str, value: Any, vr: str | None = None) -> Element:
    """An element by keyword; ``vr`` only where the dictionary allows several (OB/OW)."""
    tag, dictionary_vr = tag_vr(keyword)
    return tag, vr or dictionary_vr, value


def _encode_value(vr: str, value: Any, codec: str) -> bytes:
    if vr == "SQ":
        out = []
        for item in value:
            body = b"".join(encode_elements(item, codec).values())
            out.append(_ITEM_TAG + struct.pack("<I", len(body)) + body)
        return b"".join(out)
    if vr in ("OB", "OW"):
        raw = bytes(value)
        return raw + b"\x00" if len(raw) % 2 else raw
    if vr == "US":
        return struct.pack("<H", value)
    if vr == "UL":
        return struct.pack("<I", value)
    text = "\\".join(value) if isinstance(value, list) else str(value)
    raw = text.encode(codec if vr in _CHARSET_VRS else "ascii")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


def encode_element(tag: int, vr: str, value: Any, codec: str) -> bytes:
    """One Explicit VR Little Endian data element (PS3.5 section 7.1.2)."""
    raw = _encode_value(vr, value, codec)
    group, element = tag >> 16, tag & 0xFFFF
    if vr in _LONG_LENGTH_VRS:
        return struct.pack("<HH2sHI", group, element, vr.encode(), 0, len(raw)) + raw
    return struct.pack("<HH2sH", group, element, vr.encode(), len(raw)) + raw


def encode_elements(elements: Iterable[Element], codec: str) -> dict[int, bytes]:
    """Encoded elements keyed by tag, in tag order."""
    encoded = {tag: encode_element(tag, vr, value, codec) for tag, vr, value in elements}
    return {tag: encoded[tag] for tag in sorted(encoded)}


def file_meta_elements(sop_class: str, sop_uid: str) -> list[Element]:
    """File Meta Information (PS3.10 section 7.1) without its group length."""
    return [
        el("FileMetaInformationVersion", b"\x00\x01"),
        el("MediaStorageSOPClassUID", sop_class),
        el("MediaStorageSOPInstanceUID", sop_uid),
        el("TransferSyntaxUID", ExplicitVRLittleEndian),
        el("ImplementationClassUID", IMPLEMENTATION_CLASS_UID),
        el("ImplementationVersionName", IMPLEMENTATION_VERSION_NAME),
    ]


def file_meta_bytes(sop_class: str, sop_uid: str) -> bytes:
    body = b"".join(encode_elements(file_meta_elements(sop_class, sop_uid), "ascii").values())
    group_length = encode_element(0x00020000, "UL", len(body), "ascii")
    return b"DICM" + group_length + body


def to_dataset(elements: Iterable[Element], lenient: frozenset[int] = frozenset()) -> Dataset:
    """The same elements as a pydicom Dataset; ``lenient`` tags skip pydicom's validation."""
    ds = Dataset()
    for tag, vr, value in elements:
        if vr == "SQ":
            value = DicomSequence([to_dataset(item) for item in value])
        if tag in lenient:
            # an intentionally malformed value (e.g. BodyPartExamined "Thorax"): no warning
            ds[tag] = DataElement(tag, vr, value, validation_mode=dicom_config.IGNORE)
        else:
            ds.add_new(tag, vr, value)
    return ds


def write_part10(ds: Dataset) -> bytes:
    """Encode ``ds`` as a DICOM Part 10 file (preamble, ``DICM``, file meta, data set)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
