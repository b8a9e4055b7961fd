"""What the SMART app uses of the DICOMweb gateway, as a protocol: the app depends on these
few operations, not on :mod:`bridge.gateway` (the composition root wires the real one).

With a gateway the app mints viewer tokens (:class:`bridge.gateway.viewer_tokens.
ViewerTokens`), finds the archive holding a patient's study through the gateway's
patient-checked look-ups, and reads raw series terms from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

#: a patient identifier: FHIR Identifier (system, value)
PatientKey = tuple[str, str]


class ArchiveProxy(Protocol):
    async def qido_json(self, path: str, params: Sequence[tuple[str, str]]
                        ) -> list[dict[str, Any]]: ...


class ArchiveRoute(Protocol):
    @property
    def data_source_path(self) -> str: ...

    @property
    def proxy(self) -> ArchiveProxy: ...


class Archives(Protocol):
    @property
    def default(self) -> ArchiveRoute: ...

    async def holding(self, study_uid: str, ids: frozenset[PatientKey] | None
                      ) -> ArchiveRoute | None: ...


class Patients(Protocol):
    async def identifiers_of(self, patient: str) -> frozenset[PatientKey]: ...


class ViewerTokenMinter(Protocol):
    @property
    def lifetime(self) -> float: ...

    def mint(self, *, patient: str, lifetime: float | None = None,
             session: str | None = None) -> str: ...


class ImagingGateway(Protocol):
    """The gateway as the app sees it (``app.state.gateway``)."""

    @property
    def viewer(self) -> ViewerTokenMinter: ...

    @property
    def patients(self) -> Patients: ...

    @property
    def archives(self) -> Archives: ...
