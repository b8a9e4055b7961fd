"""PatientID (0010,0020): the one value the mapping refuses to guess.

The sync finds the study's subject by this value; a wrong value links the images to another
patient's record.  So where other attributes are left out with a warning, a PatientID that
is present but unusable is a :class:`~bridge.errors.DicomDataError` naming the tag, which
the sync records as a failure of the study:

* several values (PatientID has VM 1, PS3.6; a backslash is the value delimiter, PS3.5 6.4,
  and not part of the LO repertoire, PS3.5 6.2): which one is the patient is unknown, and
  the first may well be someone else;
* blank (padding only), longer than 64 characters (LO, PS3.5 6.2), control characters,
  U+FFFD left by a decoder (PS3.5 6.1), not a string;
* read under a SpecificCharacterSet the archive could not know (see
  :mod:`bridge.mapping.charsets`): characters may have been dropped.

An absent PatientID (no element, or no Value: Type 2 empty, PS3.3 C.7.1.1) is a warning;
the sync decides by its patient policy.  Messages never carry the value (they are stored
and logged).
"""

from __future__ import annotations

from bridge.errors import DicomDataError
from bridge.mapping import dicom_json as dj
from bridge.mapping import tags as t
from bridge.mapping import values as v
from bridge.mapping.problems import Problem
from bridge.mapping.sink import WarningSink

NO_PATIENT_ID = Problem(
    "missing-patient-id", "absent or unusable: the subject cannot be identified"
)
_LABEL = t.label(t.PATIENT_ID)


def _refuse(reason: str) -> DicomDataError:
    return DicomDataError(f"{_LABEL} {reason}: the study is linked to no Patient", tag=_LABEL)


def read(ds: dj.Dataset, sink: WarningSink, *, character_set_known: bool) -> str | None:
    """The study's PatientID, ``None`` (with a warning) when absent; raises DicomDataError
    naming the tag when it is present but cannot be trusted to identify one patient."""
    found = [value for value in dj.raw_values(ds, t.PATIENT_ID, sink) if value is not None]
    if not found:
        sink.add(t.PATIENT_ID, None, NO_PATIENT_ID)
        return None
    if len(found) > 1:
        raise _refuse(f"has {len(found)} values (VM 1, PS3.6)")
    [value] = found
    if not isinstance(value, str):
        raise _refuse("is not a string (LO)")
    if "\\" in value:
        raise _refuse("contains a backslash, the value delimiter (PS3.5 6.4)")
    checked, problem = v.check_text(value, "LO")
    if problem is not None:
        raise _refuse(f"is unusable: {problem.text}")
    if checked is None:
        raise _refuse("is blank (padding only, PS3.5 6.2 LO)")
    if not character_set_known:
        raise _refuse(
            "was decoded under a SpecificCharacterSet (0008,0005) that is not a defined term "
            "(PS3.3 C.12.1.1.2): the archive may have dropped characters of it"
        )
    return checked
