"""SMART scopes that grant imaging reads, in both SMART v1 and v2 syntax.

SMART App Launch 2.2 "Scopes for requesting clinical data": ``<context>/<resource>.<perm>``
with context ``patient``, ``user`` or ``system``; v1 permissions ``read``, ``write``, ``*``;
v2 permissions a subset of ``cruds`` in that order (``rs`` = read + search).  Scopes with
a query (``patient/Observation.rs?category=...``) only narrow access; none narrows
ImagingStudy in a way the gateway could enforce, so such scopes are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)$")


class Need(StrEnum):
    """What a request needs: QIDO-RS is a search, WADO-RS a read (SMART v2 ``s`` / ``r``)."""

    SEARCH = "s"
    READ = "r"


def grants(scopes: Iterable[str], *, context: str, need: Need) -> bool:
    """True when some scope of ``context`` (``patient`` or ``system``) allows ``need`` on
    ImagingStudy: ``.read`` / ``.*`` (v1) or a v2 permission string holding the letter."""
    for scope in scopes:
        match = _SCOPE.match(scope)
        if match is None:
            continue
        ctx, resource, perm = match.groups()
        if ctx != context or resource not in ("ImagingStudy", "*"):
            continue
        if perm in ("read", "*") or (perm not in ("write", "") and need.value in perm):
            return True
    return False


def has_context(scopes: Iterable[str], context: str) -> bool:
    """True when any clinical-data scope of ``context`` is present."""
    return any(s.startswith(f"{context}/") for s in scopes)
