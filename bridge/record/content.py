"""The SR content tree read from DICOM JSON (PS3.3 C.17.3 SR Document Content, C.18 content
item macros), unchecked: a malformed element reads as absent and the mapping that needs it
says so.  Only what the record mappings use is read: concept names, CODE, NUM (value and
units), TEXT, UIDREF and DATETIME values, and the template identifier (C.18.8)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.errors import DicomDataError
from bridge.mapping import tags
from bridge.mapping.peek import first_str, values
from bridge.record import sr_tags as st
from bridge.record.result import RecordWarning

Dataset = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Code:
    """A coded concept: value, Coding Scheme Designator and meaning (PS3.3 8.8)."""

    value: str
    scheme: str
    meaning: str

    def label(self) -> str:
        """``(SCHEME,value) meaning`` - how warnings name a concept."""
        return f"({self.scheme},{self.value}) {self.meaning}"


@dataclass(frozen=True, slots=True)
class ContentItem:
    """One content item: its value type, concept name, value and children."""

    value_type: str
    concept: Code | None
    raw: Dataset
    children: tuple[ContentItem, ...]
    #: the concept names of the containers above, outermost first, for messages
    path: tuple[str, ...]

    def is_concept(self, scheme: str, value: str) -> bool:
        """Whether the concept name is ``(scheme, value)``."""
        return self.concept is not None and (self.concept.scheme, self.concept.value) == (
            scheme, value)

    def where(self) -> str:
        """The item's place: its containers and concept, e.g. ``CT Acquisition > CT Dose >
        (DCM,113830) Mean CTDIvol``."""
        own = self.concept.label() if self.concept else self.value_type
        return " > ".join((*self.path, own))

    def walk(self) -> Iterator[ContentItem]:
        """This item and all its descendants, depth first in document order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def code_value(self) -> Code | None:
        """The value of a CODE item."""
        found = values(self.raw, st.CONCEPT_CODE_SEQUENCE)
        return read_code(found[0]) if found and isinstance(found[0], dict) else None

    def text(self) -> str | None:
        """The value of a TEXT item."""
        return first_str(self.raw, st.TEXT_VALUE)

    def uid(self) -> str | None:
        """The value of a UIDREF item."""
        return first_str(self.raw, st.UID)

    def datetime(self) -> str | None:
        """The value of a DATETIME item."""
        return first_str(self.raw, st.DATETIME)

    def measured(self) -> tuple[float | None, Code | None]:
        """(numeric value, units) of a NUM item (C.18.1); ``None`` for what is absent."""
        found = values(self.raw, st.MEASURED_VALUE_SEQUENCE)
        if not found or not isinstance(found[0], dict):
            return None, None
        mv = found[0]
        number: float | None
        try:
            text = first_str(mv, st.NUMERIC_VALUE)
            number = float(text) if text is not None else None
        except ValueError:
            number = None
        units = values(mv, st.MEASUREMENT_UNITS_CODE_SEQUENCE)
        unit = read_code(units[0]) if units and isinstance(units[0], dict) else None
        return number, unit


def read_code(item: Dataset) -> Code | None:
    """A Code Sequence item; ``None`` without a code value or scheme (Long/URN code values
    count as the value, PS3.3 8.8)."""
    value = (first_str(item, tags.CODE_VALUE) or first_str(item, tags.LONG_CODE_VALUE)
             or first_str(item, tags.URN_CODE_VALUE))
    scheme = first_str(item, tags.CODING_SCHEME_DESIGNATOR)
    if not value or not scheme:
        return None
    return Code(value, scheme, first_str(item, tags.CODE_MEANING) or "")


def _concept(ds: Dataset) -> Code | None:
    found = values(ds, tags.CONCEPT_NAME_CODE_SEQUENCE)
    return read_code(found[0]) if found and isinstance(found[0], dict) else None


def _item(
    ds: Dataset, path: tuple[str, ...], own: str, *, root: bool = False
) -> ContentItem:
    child_path = () if root else (*path, own)
    raw = [child for child in values(ds, st.CONTENT_SEQUENCE) if isinstance(child, dict)]
    concepts = [_concept(child) for child in raw]
    names = [(c.meaning or c.value) if c else "?" for c in concepts]
    seen: dict[str, int] = {}
    children: list[ContentItem] = []
    for child, name in zip(raw, names, strict=True):
        seen[name] = seen.get(name, 0) + 1
        # repeated siblings (one container per irradiation event) are told apart by number
        label = f"{name} #{seen[name]}" if names.count(name) > 1 else name
        children.append(_item(child, child_path, label))
    return ContentItem(first_str(ds, st.VALUE_TYPE) or "", _concept(ds), ds, tuple(children),
                       path)


def read_tree(ds: Dataset) -> ContentItem:
    """The document's root CONTAINER (the dataset itself, C.17.3) with its content tree."""
    return _item(ds, (), "", root=True)


def template_id(ds: Dataset) -> str | None:
    """The root's template identifier (C.18.8.1.2, ``DCMR`` mapping resource) if declared."""
    found = values(ds, st.CONTENT_TEMPLATE_SEQUENCE)
    if not found or not isinstance(found[0], dict):
        return None
    return first_str(found[0], st.TEMPLATE_IDENTIFIER)


def sop_instance_uid(ds: Dataset, what: str) -> str:
    """The instance's SOP Instance UID (0008,0018), which identifies what it maps to.

    :raises DicomDataError: ``"<what> has no SOP Instance UID"`` when it is absent.
    """
    found = first_str(ds, tags.SOP_INSTANCE_UID)
    if not found:
        raise DicomDataError(f"{what} has no SOP Instance UID",
                             tag=tags.label(tags.SOP_INSTANCE_UID))
    return found


def template_warnings(
    ds: Dataset, known: frozenset[str], *, assumed: str, otherwise: str
) -> list[RecordWarning]:
    """A warning when the SR declares no template (C.18.8), read as ``assumed``, or one not
    in ``known``, read as ``otherwise`` says; none for a known template."""
    template = template_id(ds)
    if template is None:
        return [RecordWarning("no-template", tags.label(st.CONTENT_TEMPLATE_SEQUENCE), assumed)]
    if template not in known:
        return [RecordWarning("unknown-template", f"TID {template}", otherwise)]
    return []
