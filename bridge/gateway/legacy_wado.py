"""WADO-RS of a study still on a legacy PACS, answered by the gateway (issue 15, the
migration gateway; PS3.18 10.4).

The legacy side (:class:`LegacyStudyRetrieve`, implemented over DIMSE in
:mod:`bridge.migration.gateway_union`) says which source holds a study (its study-level
C-FIND row, with the patient attributes the compartment maps) and fetches the study's
instances as Part-10 bytes, queueing its migration first.  Here the instances become the
answer:

* the study, a series or an instance (``tail`` empty): ``multipart/related;
  type="application/dicom"`` (PS3.18 8.7.3.1), one part per instance, the Part-10 file as
  the source sent it (so an instance is byte-identical to the legacy copy);
* ``metadata``: a DICOM JSON array (PS3.18 F.2) of the instances' attributes without
  bulk data (Pixel Data and other binary values left out; the instances are not yet
  where a BulkDataURI could point).

Frames, rendered and thumbnail resources of a legacy-only study are 406 (not served
until the study is migrated).
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Sequence
from typing import Any, Protocol

from pydicom import dcmread
from starlette.responses import Response

from bridge.gateway.errors import NotAcceptable, NotFound
from bridge.gateway.legacy_union import LegacyStudySearch
from bridge.gateway.paths import Target
from bridge.gateway.proxy import DICOM_JSON

__all__ = ["LegacySide", "LegacyStudyRetrieve", "legacy_answer"]

#: value representations of bulk data left out of the metadata (PS3.18 8.7.2 / F.2.7)
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


class LegacyStudyRetrieve(Protocol):
    """The legacy side of WADO-RS (:class:`bridge.migration.gateway_union.LegacyUnion`)."""

    async def locate(self, study_uid: str) -> dict[str, Any] | None:
        """The study-level row (DICOM JSON, patient attributes included) of the first
        source that holds ``study_uid``; None when none does."""
        ...

    async def instances(self, study_uid: str) -> list[bytes]:
        """The study's instances (Part-10 files as received), its migration queued first."""
        ...


class LegacySide(LegacyStudySearch, LegacyStudyRetrieve, Protocol):
    """Both: what the gateway is handed during a migration (closed with the gateway)."""

    async def aclose(self) -> None: ...


def _selected(files: Sequence[bytes], target: Target) -> list[tuple[bytes, Any]]:
    chosen = []
    for data in files:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=target.tail == "metadata")
        if target.series is not None and ds.get("SeriesInstanceUID") != target.series:
            continue
        if target.instance is not None and ds.get("SOPInstanceUID") != target.instance:
            continue
        chosen.append((data, ds))
    return chosen


def legacy_answer(target: Target, files: Sequence[bytes]) -> Response:
    """The WADO-RS answer for ``target`` from the study's instances ``files``."""
    if target.tail not in ("", "metadata"):
        raise NotAcceptable("only instances and metadata of a study still on the legacy "
                            "PACS are served until it is migrated")
    chosen = _selected(files, target)
    if not chosen:
        raise NotFound("no such series or instance in the study")
    if target.tail == "metadata":
        rows = []
        for _, ds in chosen:
            for element in list(ds):
                if element.VR in _BULK_VRS:
                    del ds[element.tag]
            rows.append(ds.to_json_dict())
        return Response(json.dumps(rows, separators=(",", ":")), media_type=DICOM_JSON)
    boundary = secrets.token_hex(16)
    body = bytearray()
    for data, _ in chosen:
        body += (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    media = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return Response(bytes(body), headers={"Content-Type": media})
