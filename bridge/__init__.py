"""imaging-fhir-bridge: DICOMweb archive -> FHIR R4 EHR sync, SMART imaging app, gateway."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
