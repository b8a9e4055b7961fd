"""The DICOMweb side: an async QIDO/WADO/STOW client and the change sources built on it."""

from __future__ import annotations

from bridge.archive.client import DicomwebClient

__all__ = ["DicomwebClient"]
