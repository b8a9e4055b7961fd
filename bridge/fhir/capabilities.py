"""What the sync needs of the FHIR server, checked against its CapabilityStatement.

A ``/metadata`` that answers 2xx is not proof of anything (a server answering an empty
Bundle passed ``/readyz``).  The sync relies on (FHIR R4 3.1.0 RESTful API, 2.37
CapabilityStatement):

* a ``batch`` (R4 3.1.0.11) at the system level.  HAPI FHIR declares only ``transaction``
  and serves both from the one endpoint, so either code counts;
* ImagingStudy: ``update`` with ``conditionalUpdate`` (the write is
  ``PUT ImagingStudy?identifier=...``, R4 3.1.0.4.3), search by ``identifier`` and
  ``_tag`` (reconcile and the delete policy find our resources with both); ``delete``
  only with ``realtime.delete_policy: delete``;
* Endpoint: ``create`` with ``conditionalCreate`` (``If-None-Exist``, R4 3.1.0.8.1) and
  search by ``identifier``;
* Patient and ServiceRequest: search by ``identifier`` (OR-searches: every token search
  parameter takes a comma list, R4 3.1.1.5.5, so declaring the parameter is enough);
  Patient also ``create`` + ``conditionalCreate`` with the mapping's policy ``create``.

A search parameter counts as declared at the resource or at the system level
(``rest.searchParam``, where some servers list the common ``_tag``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Needs:
    """Which optional abilities this deployment uses."""

    patient_create: bool = False
    delete: bool = False


def _codes(items: Any) -> set[str]:
    return {str(i.get("code")) for i in items or [] if isinstance(i, dict)}


def _names(items: Any) -> set[str]:
    return {str(p.get("name")) for p in items or [] if isinstance(p, dict)}


def missing_capabilities(statement: Any, needs: Needs = Needs()) -> list[str]:
    """What the server does not declare of what the sync relies on, in words naming each
    resource, interaction and search parameter; empty when everything is declared."""
    if not isinstance(statement, dict) or statement.get("resourceType") != \
            "CapabilityStatement":
        kind = statement.get("resourceType") if isinstance(statement, dict) else None
        return [f"/metadata is not a CapabilityStatement (got {kind or 'no resource'})"]
    missing: list[str] = []
    version = str(statement.get("fhirVersion") or "")
    if not version.startswith("4.0"):
        missing.append(f"fhirVersion 4.0.x (R4) (declared: {version or 'none'})")
    servers = [r for r in statement.get("rest") or []
               if isinstance(r, dict) and r.get("mode") == "server"]
    if not servers:
        return [*missing, "a rest entry with mode 'server'"]
    rest = servers[0]
    if not _codes(rest.get("interaction")) & {"batch", "transaction"}:
        missing.append("system interaction batch")
    common = _names(rest.get("searchParam"))
    resources = {str(r.get("type")): r for r in rest.get("resource") or []
                 if isinstance(r, dict)}

    def need(rtype: str, *, interactions: tuple[str, ...] = (), search: tuple[str, ...] = (),
             conditional_create: bool = False, conditional_update: bool = False) -> None:
        res = resources.get(rtype)
        if res is None:
            missing.append(f"resource {rtype}")
            return
        have = _codes(res.get("interaction"))
        missing.extend(f"{rtype} interaction {i}" for i in interactions if i not in have)
        params = _names(res.get("searchParam")) | common
        missing.extend(f"{rtype} search parameter {p}" for p in search if p not in params)
        if conditional_create and res.get("conditionalCreate") is not True:
            missing.append(f"{rtype} conditionalCreate")
        if conditional_update and res.get("conditionalUpdate") is not True:
            missing.append(f"{rtype} conditionalUpdate")

    need("ImagingStudy",
         interactions=("update", "search-type", *(("delete",) if needs.delete else ())),
         search=("identifier", "_tag"), conditional_update=True)
    need("Endpoint", interactions=("create", "search-type"), search=("identifier",),
         conditional_create=True)
    need("Patient", interactions=("search-type", *(("create",) if needs.patient_create
                                                   else ())),
         search=("identifier",), conditional_create=needs.patient_create)
    need("ServiceRequest", interactions=("search-type",), search=("identifier",))
    return missing
