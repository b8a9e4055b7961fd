"""Is the study's SpecificCharacterSet (0008,0005) one the archive could decode?

DICOM JSON is UTF-8 (PS3.18 F.2), so the archive has already decoded every text value with
the character set the instance names (PS3.5 6.1).  When the instance names a term that is
not defined in PS3.3 C.12.1.1.2, the decoder guesses: Orthanc 1.10 silently drops every
byte outside ASCII ("M\\xfcller" becomes "Mller", a PatientID "P\\xc41" becomes "P1"),
pydicom decodes as Latin-1.  Nothing in the decoded text shows the loss, so the mapping
reports the term, and distrusts the values a wrong reading would harm: PatientName (written
to a created Patient) and PatientID (which would find another patient's record).

Orthanc 1.10 drops the non-ASCII bytes of a value that is not valid in a *known* character
set too (invalid UTF-8 under ISO_IR 192: "M\xfcller^J\xc3" arrives as "Mller^J"), and that
leaves no trace in DICOM JSON at all; only the raw bytes (Part-10, or Orthanc's
``/instances/{id}/content/gggg-eeee``) can tell.  Decoders that replace (pydicom, Java's)
leave U+FFFD, which :mod:`bridge.mapping.values` reports.
"""

from __future__ import annotations

from typing import Final

from bridge.mapping import dicom_json as dj
from bridge.mapping import tags as t
from bridge.mapping.problems import Problem
from bridge.mapping.sink import WarningSink

_SINGLE_BYTE: Final = ("6", "100", "101", "109", "110", "144", "127", "126", "138", "148",
                       "203", "13", "166")

#: PS3.3 C.12.1.1.2 defined terms (Tables C.12-2 to C.12-5), DICOM 2024e; ``ISO_IR 6`` is
#: not listed (the default repertoire is meant by absence) but is common and unambiguous
KNOWN: Final[frozenset[str]] = frozenset(
    [f"ISO_IR {n}" for n in _SINGLE_BYTE]
    + [f"ISO 2022 IR {n}" for n in _SINGLE_BYTE]
    + ["ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149", "ISO 2022 IR 58"]
    + ["ISO_IR 192", "GB18030", "GBK"]
)

UNKNOWN = Problem(
    "unknown-character-set",
    "not a defined term (PS3.3 C.12.1.1.2): the archive may have dropped or misread "
    "characters of text values",
)


def is_known(ds: dj.Dataset, sink: WarningSink) -> bool:
    """True when every term of the dataset's SpecificCharacterSet is defined (or there is
    none: the default repertoire); otherwise a warning naming (0008,0005) and False.

    Terms are compared without padding and case, as Orthanc and pydicom read them.
    """
    terms = dj.raw_values(ds, t.SPECIFIC_CHARACTER_SET, sink)
    unknown = [
        term for term in terms
        if term is not None
        and not (isinstance(term, str) and (not term.strip() or term.strip().upper() in KNOWN))
    ]
    if unknown:
        sink.add(t.SPECIFIC_CHARACTER_SET, unknown[0], UNKNOWN)
        return False
    return True
