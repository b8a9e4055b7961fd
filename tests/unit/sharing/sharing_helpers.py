"""Builders for the sharing tests: DICOM JSON instances and policies with defaults."""

from __future__ import annotations

from typing import Any

from bridge.sharing.loader import load_sharing_policy
from bridge.sharing.policy import SharingPolicy

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def element(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def instance(
    *,
    study: str = "1.2.3.4",
    series: str = "1.2.3.4.1",
    sop: str = "1.2.3.4.1.1",
    sop_class: str = CT_IMAGE,
    modality: str = "CT",
    patient_id: str | None = "MRN-1",
    issuer: str | None = "HOSP_A",
    image: bool = True,
    **extra: dict[str, Any],
) -> dict[str, Any]:
    """One instance's WADO-RS metadata (DICOM JSON, PS3.18 F.2) with the given values."""
    ds: dict[str, Any] = {
        "0020000D": element("UI", study),
        "0020000E": element("UI", series),
        "00080018": element("UI", sop),
        "00080016": element("UI", sop_class),
        "00080060": element("CS", modality),
        "00100020": element("LO", patient_id) if patient_id is not None else element("LO"),
    }
    if issuer is not None:
        ds["00100021"] = element("LO", issuer)
    if image:
        ds["00280010"] = element("US", 8)
    ds.update(extra)
    return ds


def policy(**overrides: Any) -> SharingPolicy:
    """The repository's mappings/sharing.yaml with top-level sections updated."""
    base = load_sharing_policy()
    data = base.model_dump(by_alias=True)
    for key, value in overrides.items():
        data[key] = {**data[key], **value}
    return SharingPolicy.model_validate(data)
