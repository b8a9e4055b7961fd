"""Parse the DICOMweb resource paths the gateway serves (PS3.18 10.4.1 WADO-RS,
10.6.1 QIDO-RS) into UIDs; the upstream URL is rebuilt from the parsed parts only, so dot
segments, encoded slashes and other path tricks never reach the archive."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.dicom_uid import is_valid_uid
from bridge.gateway.errors import BadRequest

_FRAMES = re.compile(r"^[1-9][0-9]{0,8}(,[1-9][0-9]{0,8})*$")
_BULK_SEGMENT = re.compile(r"^[0-9A-Fa-f]{1,8}$")
#: the last path segment of a retrieve that is not the resource itself
_RENDER = ("rendered", "thumbnail")


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed request: ``qido_level`` set for a search, else a WADO-RS retrieve."""

    study: str | None
    series: str | None = None
    instance: str | None = None
    qido_level: str | None = None
    #: what is retrieved below the resource: "", "metadata", "rendered", "thumbnail",
    #: "frames/1,2[/rendered]" or "bulk/..." (an archive BulkDataURI)
    tail: str = ""

    @property
    def upstream(self) -> str:
        parts: list[str] = []
        if self.study:
            parts += ["studies", self.study]
        if self.series:
            parts += ["series", self.series]
        if self.instance:
            parts += ["instances", self.instance]
        if self.qido_level and (self.study or self.qido_level != "studies"):
            parts.append(self.qido_level)
        if self.tail:
            parts.append(self.tail)
        return "/".join(parts) or "studies"

    @property
    def is_json(self) -> bool:
        return self.qido_level is not None or self.tail == "metadata"


def uid(value: str) -> str:
    if not is_valid_uid(value):
        raise BadRequest("not a valid DICOM UID in the path")
    return value


def _tail(rest: list[str], *, instance: bool) -> str:
    if not rest:
        return ""
    if len(rest) == 1 and rest[0] in ("metadata", *_RENDER):
        return rest[0]
    if (instance and rest[0] == "frames" and len(rest) in (2, 3) and _FRAMES.match(rest[1])
            and (len(rest) == 2 or rest[2] in _RENDER)):
        return "/".join(rest)
    if instance and rest[0] == "bulk" and 1 < len(rest) <= 16 and all(
        _BULK_SEGMENT.match(s) for s in rest[1:]
    ):
        return "/".join(rest)
    raise BadRequest("unsupported DICOMweb resource path")


def parse(path: str) -> Target:
    """Parse the part after ``/dicom-web/`` (``studies/1.2/series/3.4/metadata`` ...)."""
    parts = path.split("/")
    if parts in (["studies"], ["series"], ["instances"]):
        return Target(study=None, qido_level=parts[0])
    if len(parts) < 2 or parts[0] != "studies":
        raise BadRequest("unsupported DICOMweb resource path")
    study = uid(parts[1])
    rest = parts[2:]
    if rest in (["series"], ["instances"]):
        return Target(study=study, qido_level=rest[0])
    if not rest or rest[0] != "series":
        return Target(study=study, tail=_tail(rest, instance=False))
    if len(rest) < 2:
        raise BadRequest("unsupported DICOMweb resource path")
    series = uid(rest[1])
    rest = rest[2:]
    if rest == ["instances"]:
        return Target(study=study, series=series, qido_level="instances")
    if not rest or rest[0] != "instances":
        return Target(study=study, series=series, tail=_tail(rest, instance=False))
    if len(rest) < 2:
        raise BadRequest("unsupported DICOMweb resource path")
    return Target(study=study, series=series, instance=uid(rest[1]),
                  tail=_tail(rest[2:], instance=True))
