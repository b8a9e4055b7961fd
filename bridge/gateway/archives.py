"""The archives behind the gateway: one proxy and one patient compartment per configured
archive (issue 8: every configured archive is served).

URLs (PS3.18 10.4.1 WADO-RS and 10.6.1 QIDO-RS resource paths below each base)::

    {root}/studies ...            the default archive (``gateway.archive``, else the first)
    {root}/{name}/studies ...     any configured archive by name, the default one included

Each archive's JSON answers are rewritten to *its* public base, so a RetrieveURL or
BulkDataURI the client follows leads back to the same archive; the compartment of an
archive only ever asks that archive which patient a study belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bridge.config import ArchiveSettings, GatewaySettings
from bridge.errors import ConfigError
from bridge.gateway.compartment import Compartment, PatientKey, PatientMapper
from bridge.gateway.errors import NotFound
from bridge.gateway.proxy import ArchiveProxy
from bridge.urls import PublicUrls


@dataclass(frozen=True, slots=True)
class ArchiveRoute:
    """One archive as the gateway serves it."""

    name: str
    #: the public DICOMweb base of this archive (the root for the default archive)
    public_base: str
    proxy: ArchiveProxy
    compartment: Compartment
    default: bool

    @property
    def data_source_path(self) -> str:
        """The OHIF route segment selecting this archive's data source: "" for the
        default archive (OHIF's default data source), else ``/{name}``."""
        return "" if self.default else f"/{self.name}"


class ArchiveRoutes:
    """The gateway's archives by name, the default one first."""

    def __init__(self, archives: Sequence[ArchiveSettings], *, gateway: GatewaySettings,
                 urls: PublicUrls, mapper: PatientMapper) -> None:
        default = urls.default_archive
        if default is None:
            raise ValueError("the gateway needs an archive")
        if default not in {a.name for a in archives}:  # a Settings built by hand
            raise ConfigError(f"no archive named {default!r} is configured (have: "
                              f"{', '.join(a.name for a in archives) or 'none'})")
        gw = gateway
        ordered = sorted(archives, key=lambda a: a.name != default)  # stable
        self._routes: dict[str, ArchiveRoute] = {}
        for archive in ordered:
            base = urls.archive(archive.name)
            proxy = ArchiveProxy(archive, public_base=base, timeout=gw.timeout)
            compartment = Compartment(archive=proxy, mapper=mapper, ttl=gw.cache_ttl,
                                      size=gw.cache_size)
            self._routes[archive.name] = ArchiveRoute(archive.name, base, proxy, compartment,
                                                      default=archive.name == default)
        self.default = self._routes[default]

    def __iter__(self) -> Iterator[ArchiveRoute]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def get(self, name: str | None) -> ArchiveRoute:
        """The archive served at ``/dicom-web/{name}`` (None: the root's default archive)."""
        if name is None:
            return self.default
        route = self._routes.get(name)
        if route is None:
            # archive names are configuration, not patient data: a plain 404 leaks nothing
            raise NotFound("no archive of that name is behind this DICOMweb gateway")
        return route

    async def holding(self, study_uid: str, ids: frozenset[PatientKey] | None
                      ) -> ArchiveRoute | None:
        """The first archive (default first) that has the study, as one of the patient's
        when ``ids`` is given (so the answer is no existence oracle); None if none does."""
        for route in self._routes.values():
            key = await route.compartment.study_patient(study_uid)
            if key is not None and (ids is None or key in ids):
                return route
        return None

    async def aclose(self) -> None:
        for route in self._routes.values():
            await route.proxy.aclose()
