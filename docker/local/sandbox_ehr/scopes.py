"""SMART scopes (App Launch 2.2 "Scopes and launch context") and what they permit.

v2 form ``<context>/<Type|*>.<cruds>`` (e.g. ``system/ImagingStudy.cu``) and v1 form
``<context>/<Type|*>.<read|write|*>`` are both understood.  A request is allowed when some
granted scope covers its resource type and interaction; with only ``patient/`` scopes the
request must also stay inside the patient compartment (checked by the proxy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([cruds]+|read|write|\*)"
                    r"(\?.*)?$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class Grant:
    context: str  # patient | user | system
    resource: str  # a type or *
    permissions: frozenset[str]

    def covers(self, resource: str, permission: str) -> bool:
        return self.resource in ("*", resource) and permission in self.permissions


def parse_scopes(scope: str) -> list[Grant]:
    grants = []
    for item in scope.split():
        m = _SCOPE.match(item)
        if not m:
            continue  # launch, openid, fhirUser, offline_access ...
        perms = _V1.get(m.group(3), m.group(3))
        grants.append(Grant(m.group(1), m.group(2), frozenset(perms)))
    return grants


def contexts_allowing(grants: list[Grant], resource: str, permission: str) -> set[str]:
    """The contexts (patient/user/system) whose scopes allow this interaction."""
    return {g.context for g in grants if g.covers(resource, permission)}
