"""Checks of single DICOM values against their Value Representation (PS3.5 6.2).

Each check returns the usable value or a :class:`~bridge.mapping.problems.Problem`; the
caller decides the tag to blame.
Values reaching FHIR must also be valid FHIR strings (FHIR R4 2.24.0.1 string: no characters
below U+0020 except TAB, CR and LF), and must encode as UTF-8 (no lone surrogates).
"""

from __future__ import annotations

import re
from typing import Final

from bridge.mapping.problems import Problem

#: Maximum value length in characters per VR (PS3.5 Table 6.2-1); PN counts per component
#: group.  VRs without an entry (UC, UR, UT) are unlimited for our purposes.  DA and TM allow
#: the ACR-NEMA forms ``YYYY.MM.DD`` and ``HH:MM:SS.FFFFFF`` that PS3.5 6.2 asks readers to
#: accept, so their limits are those forms' lengths.
MAX_CHARS: Final[dict[str, int]] = {
    "AE": 16,
    "AS": 4,
    "CS": 16,
    "DA": 10,
    "DS": 16,
    "DT": 26,
    "IS": 12,
    "LO": 64,
    "LT": 10240,
    "PN": 64,
    "SH": 16,
    "ST": 1024,
    "TM": 16,
    "UI": 64,
}

# C0 controls other than TAB/LF/CR, DEL, C1 controls, U+FFFD (what a decoder leaves for bytes
# it could not decode) and lone surrogates (JSON "\ud800" escapes that are not text).
_BAD_CHARS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ud800-\udfff]")
# PS3.5 9.1: components of digits separated by ".", at most 64 characters.
UID_PATTERN: Final = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_UID = UID_PATTERN
_UID_LEADING_ZERO: Final = re.compile(r"(?:^|\.)0[0-9]")
# PS3.5 6.2 CS: upper case letters, digits, space and underscore.
_CS: Final = re.compile(r"[A-Z0-9 _]+")
# PS3.5 6.2 IS: optional sign and digits, leading/trailing spaces allowed.
_IS: Final = re.compile(r"[+-]?[0-9]+")

UNDECODABLE = Problem(
    "undecodable-characters",
    "undecodable characters (U+FFFD; wrong or missing SpecificCharacterSet?)",
)
CONTROL = Problem(
    "control-characters", "control characters or lone surrogates (not allowed in FHIR strings)"
)
UID_TOO_LONG = Problem("too-long", "longer than 64 characters (UI, PS3.5 9.1)")
BAD_UID = Problem("invalid-uid", "not a valid UID (PS3.5 9.1: digits separated by '.')")
BAD_INTEGER = Problem("invalid-integer", "not an integer (IS, PS3.5 6.2)")
INTEGER_RANGE = Problem("invalid-integer", "outside the IS range -2^31..2^31-1 (PS3.5 6.2)")
BAD_CODE_STRING = Problem(
    "invalid-code-string", "not a code string (CS: A-Z, 0-9, space, underscore)"
)
#: one problem per VR with a length limit (the text names the limit, never the value)
TOO_LONG: Final[dict[str, Problem]] = {
    vr: Problem("too-long", f"longer than {limit} characters ({vr}, PS3.5 6.2)")
    for vr, limit in MAX_CHARS.items()
}


def check_text(value: str, vr: str) -> tuple[str | None, Problem | None]:
    """Strip DICOM padding and check a text value; return ``(value, None)`` or ``(None, why)``.

    An empty value after stripping is returned as ``(None, None)``: absent, not wrong.
    """
    text = value.strip(" \x00")
    if not text:
        return None, None
    limit = MAX_CHARS.get(vr)
    if limit is not None and len(text) > limit:
        return None, TOO_LONG[vr]
    bad = _BAD_CHARS.search(text)
    if bad is not None:
        return None, UNDECODABLE if bad.group() == "\ufffd" else CONTROL
    return text, None


def check_uid(value: str) -> tuple[str | None, Problem | None]:
    """Check a UI value (PS3.5 9.1); leading zeros in components are tolerated by the caller."""
    text = value.strip(" \x00")
    if not text:
        return None, None
    if len(text) > 64:
        return None, UID_TOO_LONG
    if _UID.fullmatch(text) is None:
        return None, BAD_UID
    return text, None


def uid_has_leading_zero(value: str) -> bool:
    """True when a UID component has a leading zero (not conformant, but common)."""
    return _UID_LEADING_ZERO.search(value) is not None


def is_valid_uid(value: object) -> bool:
    """Fast path: ``value`` is a conformant-enough UID string needing no stripping."""
    return type(value) is str and len(value) <= 64 and _UID.fullmatch(value) is not None


#: PS3.5 6.2 IS range, which is also FHIR R4's integer range (2.24.0.1)
IS_MIN: Final = -(2**31)
IS_MAX: Final = 2**31 - 1


def check_integer(value: object) -> tuple[int | None, Problem | None]:
    """Parse an IS value: a JSON number (PS3.18 F.2.3.1) or a numeric string."""
    number: int | None = None
    if type(value) is int:
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip(" \x00")
        if not text:
            return None, None
        if len(text) <= MAX_CHARS["IS"] and _IS.fullmatch(text):
            number = int(text)
    if number is None:
        return None, BAD_INTEGER
    if not IS_MIN <= number <= IS_MAX:
        return None, INTEGER_RANGE
    return number, None


def check_code_string(value: str) -> tuple[str | None, Problem | None]:
    """Check a CS value; lower case is accepted and upper-cased (a common deviation)."""
    text, problem = check_text(value, "CS")
    if text is None:
        return None, problem
    upper = text.upper()
    if _CS.fullmatch(upper) is None:
        return None, BAD_CODE_STRING
    return upper, None
