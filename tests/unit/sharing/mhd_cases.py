"""The MHD test cases: the ITI-65 bundle of the generated study's manifest."""

from __future__ import annotations

from typing import Any

from bridge.sharing.kos import manifest_part10
from bridge.sharing.mhd import provide_bundle
from bridge.sharing.study import read_study
from tests.unit.sharing.kos_cases import CREATED, generated, kos_json, write_golden
from tests.unit.sharing.sharing_helpers import policy

REGISTRY = "https://registry.example.org/fhir"
ACCESSION = {"system": "https://hospital-a.example.org/fhir/sid/accession", "value": "A-1"}


def bundle_of(instances: list[dict[str, Any]] | None = None, **kwargs: Any) -> dict[str, Any]:
    instances = instances if instances is not None else generated().to_dicom_json()
    manifest = kos_json(instances)
    options: dict[str, Any] = {"policy": policy(), "registry_url": REGISTRY,
                               "created": CREATED}
    options.update(kwargs)
    return provide_bundle(manifest, manifest_part10(manifest), read_study(instances), **options)


if __name__ == "__main__":
    write_golden("mhd_seed7_study1.json", bundle_of(accession=ACCESSION))
