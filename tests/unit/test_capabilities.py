"""The CapabilityStatement check names each missing ability (issue 20 item 8a)."""

from __future__ import annotations

from bridge.fhir.capabilities import Needs, missing_capabilities


def _statement(**overrides: object) -> dict[str, object]:
    def res(rtype: str, params: tuple[str, ...]) -> dict[str, object]:
        return {"type": rtype, "conditionalCreate": True, "conditionalUpdate": True,
                "interaction": [{"code": c} for c in ("create", "update", "delete",
                                                      "search-type")],
                "searchParam": [{"name": p} for p in params]}

    rest = {"mode": "server", "interaction": [{"code": "batch"}],
            "resource": [res("ImagingStudy", ("identifier", "_tag")),
                         res("Endpoint", ("identifier",)), res("Patient", ("identifier",)),
                         res("ServiceRequest", ("identifier",))]}
    return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
            "rest": [rest], **overrides}


def test_a_complete_statement_misses_nothing() -> None:
    assert missing_capabilities(_statement(), Needs(patient_create=True, delete=True)) == []


def test_an_empty_bundle_is_not_a_capability_statement() -> None:
    assert missing_capabilities({"resourceType": "Bundle"}) == [
        "/metadata is not a CapabilityStatement (got Bundle)"]
    assert missing_capabilities([]) == [
        "/metadata is not a CapabilityStatement (got no resource)"]


def test_other_fhir_versions_and_missing_resources_are_named() -> None:
    statement = _statement(fhirVersion="5.0.0")
    rest = statement["rest"][0]  # type: ignore[index]
    rest["resource"] = [r for r in rest["resource"] if r["type"] != "Endpoint"]
    assert missing_capabilities(statement) == ["fhirVersion 4.0.x (R4) (declared: 5.0.0)",
                                               "resource Endpoint"]


def test_optional_abilities_are_asked_only_when_used() -> None:
    statement = _statement()
    for res in statement["rest"][0]["resource"]:  # type: ignore[index]
        res["interaction"] = [{"code": "search-type"}, {"code": "update"}]
        res["conditionalCreate"] = False
    assert "Patient interaction create" not in missing_capabilities(statement)
    needed = missing_capabilities(statement, Needs(patient_create=True, delete=True))
    assert {"Patient interaction create", "Patient conditionalCreate",
            "ImagingStudy interaction delete", "Endpoint interaction create"} <= set(needed)


def test_tag_declared_at_the_system_level_counts() -> None:
    statement = _statement()
    rest = statement["rest"][0]  # type: ignore[index]
    for res in rest["resource"]:
        res["searchParam"] = [p for p in res["searchParam"] if p["name"] != "_tag"]
    assert missing_capabilities(statement) == ["ImagingStudy search parameter _tag"]
    rest["searchParam"] = [{"name": "_tag"}]
    assert missing_capabilities(statement) == []
