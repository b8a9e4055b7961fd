"""The DICOMweb side: what the bridge needs of an archive (:class:`DicomwebSource`) and its
two implementations, DICOMweb over HTTP (:class:`DicomwebClient`) and DICOM files indexed
in SQLite (:class:`LocalFilesSource`)."""

from __future__ import annotations

from bridge.archive.client import DicomwebClient
from bridge.archive.local_files import LocalFilesSource
from bridge.archive.source import DicomwebSource, QidoPage

__all__ = ["DicomwebClient", "DicomwebSource", "LocalFilesSource", "QidoPage"]


def _both_are_sources(http: DicomwebClient, files: LocalFilesSource
                      ) -> tuple[DicomwebSource, DicomwebSource]:
    """Never called: mypy checks here that both implementations fit the protocol."""
    return http, files
