"""DICOM UIDs checked at every boundary where one enters a URL or a queue.

A UID is only ever an identifier to us, never a path: one from the archive, a webhook, a
STOW request or a viewer goes into a DICOMweb URL (``studies/{uid}/metadata``), so a value
such as ``1.2.3/../4.5.6`` or ``%2e%2e`` would otherwise address another resource.  The
rule is PS3.5 9.1: components of digits separated by ".", no component with a leading zero
(except the single digit "0"), at most 64 characters, and at least two components (every
registered root has them; a single number is never a UID a modality wrote).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from bridge.errors import DicomDataError

#: PS3.5 9.1 UID encoding rules
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
#: PS3.5 9.1: "UIDs shall not exceed 64 total characters"
MAX_LENGTH = 64

STUDY_UID_TAG = "(0020,000D) StudyInstanceUID"
SERIES_UID_TAG = "(0020,000E) SeriesInstanceUID"
SOP_UID_TAG = "(0008,0018) SOPInstanceUID"


def is_valid_uid(value: object) -> bool:
    """Whether ``value`` is a string that is a well-formed UID (PS3.5 9.1)."""
    return (isinstance(value, str) and len(value) <= MAX_LENGTH
            and _UID.fullmatch(value) is not None)


def require_uid(value: object, *, tag: str = STUDY_UID_TAG) -> str:
    """``value`` if it is a valid UID, else :class:`DicomDataError` naming ``tag``.

    The message shows the value escaped (``repr``, cut at 80 characters) so control
    characters in it can never forge a log line or a failure listing.
    """
    if is_valid_uid(value):
        return value  # type: ignore[return-value]  # is_valid_uid proved it is a str
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise DicomDataError(
        f"{tag} {shown} is not a valid DICOM UID (PS3.5 9.1: digits and dots, no leading "
        f"zero in a component, at most {MAX_LENGTH} characters)",
        tag=tag,
    )


def uid_segment(value: object, *, tag: str = STUDY_UID_TAG) -> str:
    """A validated UID quoted as one URL path segment (RFC 3986 3.3).

    Validation already leaves only digits and dots; the quoting is the second lock on the
    door, so that a future relaxation of the check can never turn into a path change.
    """
    return quote(require_uid(value, tag=tag), safe="")
