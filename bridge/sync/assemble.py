"""Put the resolved references into a mapped ImagingStudy and hash the result.

The mapping engine is pure and knows nothing of server ids; the sync resolves Patient,
ServiceRequest and Endpoint ids and writes them in here.  The content hash is taken over the
final resource, so a newly resolved reference is a real change and is written once.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

Resource = dict[str, Any]

#: meta.tag on every resource the bridge writes; deletes and reconciliation touch only
#: resources carrying it (FHIR R4 Meta.tag, 2.22.1)
BRIDGE_TAG = {"system": "urn:imaging-bridge", "code": "managed", "display": "imaging-fhir-bridge"}


def assemble(
    imaging_study: Resource,
    *,
    patient_reference: str | None,
    service_requests: Mapping[tuple[str, str], str],
    endpoint_reference: str | None,
    extra_endpoints: Sequence[str] = (),
) -> Resource:
    """A copy of ``imaging_study`` with server references filled in (R4 Reference 2.3.0).

    ImagingStudy.endpoint (0..*) gets the archive's Endpoint first, then ``extra_endpoints``
    (e.g. the gateway's ``ihe-iid`` Endpoint), in the order given: the order is part of the
    content hash, so it must not vary between runs."""
    out = copy.deepcopy(imaging_study)
    if patient_reference:
        subject = out.get("subject") or {}
        # keep the business identifier next to the literal reference: both are allowed and
        # the identifier helps a reader when the Patient is later merged
        out["subject"] = {"reference": patient_reference, **{k: v for k, v in subject.items()
                                                             if k == "identifier"}}
    for ref in out.get("basedOn", []) or []:
        ident = ref.get("identifier") or {}
        key = (ident.get("system", ""), ident.get("value", ""))
        resolved = service_requests.get(key)
        if resolved:
            ref["reference"] = resolved
    if endpoint_reference:
        refs = list(dict.fromkeys([endpoint_reference, *extra_endpoints]))
        out["endpoint"] = [{"reference": r} for r in refs]
        for series in out.get("series", []) or []:
            series.pop("endpoint", None)
    return out


def with_bridge_tag(resource: Resource) -> Resource:
    out = dict(resource)
    meta = dict(out.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("system") != BRIDGE_TAG["system"]]
    meta["tag"] = [*tags, BRIDGE_TAG]
    out["meta"] = meta
    return out
