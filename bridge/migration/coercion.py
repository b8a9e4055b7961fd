"""Coercion of a legacy instance on its way into the archive, by a source's rules
(:mod:`bridge.migration.coercion_rules`), keeping what it replaced (PS3.3 C.12.1.1.9).

Rules apply in this order: the patient-ID cross-reference, the Issuer of Patient ID (and
its qualifiers), the accession prefix, the institution name.  When any changes the data
set, one item is added to Original Attributes Sequence (0400,0561) (after any the
instance already has) with:

* Modified Attributes Sequence (0400,0550): one item holding each changed attribute with
  its value *before* the change; an attribute that was absent is held with no value;
* Attribute Modification DateTime (0400,0562), Modifying System (0400,0563), Source of
  Previous Values (0400,0564: the legacy source's AE title), Reason for the Attribute
  Modification (0400,0565) ``COERCE``.

An instance no rule changes is returned as the very bytes it came in (nothing decoded is
written back), so the no-coercion path stays byte-exact.  A rule whose result does not fit
the element's VR (an accession over 16 characters) is a
:class:`~bridge.errors.DicomDataError`.
"""

from __future__ import annotations

import copy
import io
from datetime import datetime

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.errors import DicomDataError
from bridge.migration.coercion_rules import SH_MAX, IssuerQualifiers, SourceRules

__all__ = ["REASON_COERCE", "SourceCoercion"]

#: Reason for the Attribute Modification (0400,0565), PS3.3 C.12.1.1.9.2: values were
#: changed to match the receiver's conventions
REASON_COERCE = "COERCE"


def _qualifiers_item(q: IssuerQualifiers) -> Dataset:
    item = Dataset()
    if q.universal_entity_id is not None:
        item.UniversalEntityID = q.universal_entity_id
    if q.universal_entity_id_type is not None:
        item.UniversalEntityIDType = q.universal_entity_id_type
    if q.identifier_type_code is not None:
        item.IdentifierTypeCode = q.identifier_type_code
    return item


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


class SourceCoercion:
    """A source's rules as a callable on Part-10 bytes (see the module doc)."""

    def __init__(self, rules: SourceRules, *, modifying_system: str,
                 source_of_previous_values: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rules = rules
        self.modifying_system = modifying_system
        self.source_of_previous_values = source_of_previous_values
        self._clock = clock

    def __call__(self, part10: bytes) -> bytes:
        ds = dcmread(io.BytesIO(part10))
        if not self.coerce(ds):
            return part10
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()

    def coerce(self, ds: Dataset) -> bool:
        """Apply the rules to ``ds`` in place; whether anything changed."""
        originals: dict[str, DataElement] = {}

        def change(keyword: str, value: object) -> None:
            if keyword not in originals:
                if keyword in ds:
                    originals[keyword] = copy.deepcopy(ds[keyword])
                else:  # absent before: held with no value (C.12.1.1.9)
                    tag = tag_for_keyword(keyword)
                    assert tag is not None, keyword
                    vr = dictionary_VR(tag)
                    originals[keyword] = DataElement(tag, vr, [] if vr == "SQ" else None)
            setattr(ds, keyword, value)

        rules = self.rules
        patient_id = _text(ds, "PatientID")
        if patient_id in rules.patient_ids:
            change("PatientID", rules.patient_ids[patient_id])
        issuer = rules.issuer_of_patient_id
        if issuer is not None:
            current = _text(ds, "IssuerOfPatientID")
            if current != issuer.value and (issuer.replace or not current):
                change("IssuerOfPatientID", issuer.value)
            if issuer.qualifiers is not None and (issuer.replace or not current):
                wanted = Sequence([_qualifiers_item(issuer.qualifiers)])
                if ds.get("IssuerOfPatientIDQualifiersSequence") != wanted:
                    change("IssuerOfPatientIDQualifiersSequence", wanted)
        prefix = rules.accession_prefix
        accession = _text(ds, "AccessionNumber")
        if prefix and accession and not accession.startswith(prefix):
            coerced = prefix + accession
            if len(coerced) > SH_MAX:
                raise DicomDataError(
                    f"accession prefix {prefix!r} makes Accession Number {coerced!r} longer "
                    f"than {SH_MAX} characters (VR SH)", tag="(0008,0050) AccessionNumber")
            change("AccessionNumber", coerced)
        institution = _text(ds, "InstitutionName")
        if institution in rules.institution_names:
            change("InstitutionName", rules.institution_names[institution])
        if not originals:
            return False
        self._record(ds, originals)
        return True

    def _record(self, ds: Dataset, originals: dict[str, DataElement]) -> None:
        """Add the Original Attributes Sequence item (PS3.3 C.12.1.1.9)."""
        modified = Dataset()
        for element in originals.values():
            modified.add(element)
        item = Dataset()
        item.ModifiedAttributesSequence = Sequence([modified])
        moment = datetime.fromtimestamp(self._clock.time()).astimezone()
        item.AttributeModificationDateTime = moment.strftime("%Y%m%d%H%M%S.%f%z")
        item.ModifyingSystem = self.modifying_system
        item.SourceOfPreviousValues = self.source_of_previous_values
        item.ReasonForTheAttributeModification = REASON_COERCE
        existing = ds.get("OriginalAttributesSequence")
        ds.OriginalAttributesSequence = Sequence([*(existing or []), item])

