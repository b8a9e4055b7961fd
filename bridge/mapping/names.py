"""Person names (PN, PS3.5 6.2.1) to FHIR display text and HumanName.

A PN component group holds up to five ``^``-separated components: family name, given name,
middle name, prefix, suffix (PS3.5 6.2.1.1).  DICOM JSON gives each group separately
(PS3.18 F.2.2): Alphabetic, Ideographic, Phonetic.
"""

from __future__ import annotations

from typing import Any, Final

#: FHIR R4 core extension: how a name is written (ABC alphabetic, IDE ideographic, SYL syllabic)
EN_REPRESENTATION: Final = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
_REPRESENTATION: Final = {"Alphabetic": "ABC", "Ideographic": "IDE", "Phonetic": "SYL"}


def components(group: str) -> list[str]:
    """Split a component group into [family, given, middle, prefix, suffix], stripped."""
    parts = [part.strip() for part in group.split("^")[:5]]
    return parts + [""] * (5 - len(parts))


def display(groups: dict[str, str]) -> str | None:
    """Display text ``prefix given middle family suffix`` from the first group present.

    Used for Reference.display of referrer, interpreter and performers (FHIR R4 ImagingStudy),
    where "Given Family" reads naturally in an EHR.
    """
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        raw = groups.get(group)
        if raw:
            family, given, middle, prefix, suffix = components(raw)
            words = [word for word in (prefix, given, middle, family, suffix) if word]
            if words:
                return " ".join(words)
    return None


def human_names(groups: dict[str, str]) -> list[dict[str, Any]]:
    """One FHIR HumanName per component group; Ideographic and Phonetic groups are marked
    with the iso21090-EN-representation extension (IDE, SYL) so they are not mistaken for
    a second official name."""
    out: list[dict[str, Any]] = []
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        raw = groups.get(group)
        if not raw:
            continue
        family, given, middle, prefix, suffix = components(raw)
        name: dict[str, Any] = {}
        if group != "Alphabetic":
            name["extension"] = [{"url": EN_REPRESENTATION, "valueCode": _REPRESENTATION[group]}]
        name["use"] = "official"
        if family:
            name["family"] = family
        given_names = [word for word in (given, middle) if word]
        if given_names:
            name["given"] = given_names
        if prefix:
            name["prefix"] = [prefix]
        if suffix:
            name["suffix"] = [suffix]
        if len(name) > (2 if "extension" in name else 1):
            out.append(name)
    return out
