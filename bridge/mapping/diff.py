"""What a mapping change does to a study: structural diff of two mapping results.

Pure functions, used by ``imaging-bridge mappings diff`` to review a proposed mapping on real
studies before it goes live.  Lists of objects with a ``uid`` (series, instances) are matched
by uid, so inserting one series reads as one addition, not as every later series changing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge.errors import DicomDataError
from bridge.mapping.engine import DicomJson, MappingEngine
from bridge.mapping.result import EndpointSpec, MappingResult

Op = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference at ``path`` (``series[uid=1.2].bodySite.code``, ``identifier[1]``)."""

    path: str
    op: Op
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.op == "added":
            return f"+ {self.path}: {_show(self.new)}"
        if self.op == "removed":
            return f"- {self.path}: {_show(self.old)}"
        return f"~ {self.path}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 200 else text[:199] + "…"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    if not all(isinstance(item, dict) and isinstance(item.get("uid"), str) for item in items):
        return None
    keyed = {item["uid"]: item for item in items}
    return keyed if len(keyed) == len(items) else None


def diff_json(old: Any, new: Any, path: str = "") -> list[Change]:
    """All differences between two JSON values, in document order."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in [*old, *(k for k in new if k not in old)]:
            child = _join(path, key)
            if key not in new:
                changes.append(Change(child, "removed", old=old[key]))
            elif key not in old:
                changes.append(Change(child, "added", new=new[key]))
            else:
                changes.extend(diff_json(old[key], new[key], child))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        return _diff_list(old, new, path)
    if old == new and type(old) is type(new):
        return []
    return [Change(path or "(root)", "changed", old=old, new=new)]


def _diff_list(old: list[Any], new: list[Any], path: str) -> list[Change]:
    old_keyed, new_keyed = _keyed(old), _keyed(new)
    changes: list[Change] = []
    if old_keyed is not None and new_keyed is not None and (old or new):
        for uid in [*old_keyed, *(u for u in new_keyed if u not in old_keyed)]:
            child = f"{path}[uid={uid}]"
            if uid not in new_keyed:
                changes.append(Change(child, "removed", old=old_keyed[uid]))
            elif uid not in old_keyed:
                changes.append(Change(child, "added", new=new_keyed[uid]))
            else:
                changes.extend(diff_json(old_keyed[uid], new_keyed[uid], child))
        return changes
    for index in range(max(len(old), len(new))):
        child = f"{path}[{index}]"
        if index >= len(new):
            changes.append(Change(child, "removed", old=old[index]))
        elif index >= len(old):
            changes.append(Change(child, "added", new=new[index]))
        else:
            changes.extend(diff_json(old[index], new[index], child))
    return changes


@dataclass(frozen=True, slots=True)
class StudyDiff:
    """How one study's mapping differs between the current and a proposed mapping."""

    study_uid: str
    imaging_study: list[Change] = field(default_factory=list)
    endpoint: list[Change] = field(default_factory=list)
    links: list[Change] = field(default_factory=list)
    warnings_added: list[str] = field(default_factory=list)
    warnings_removed: list[str] = field(default_factory=list)
    #: the DicomDataError message when a mapping could not map the study at all
    error_current: str | None = None
    error_proposed: str | None = None

    @property
    def changed(self) -> bool:
        """True when anything the sync would write or record differs."""
        return bool(
            self.error_current != self.error_proposed
            or self.imaging_study
            or self.endpoint
            or self.links
            or self.warnings_added
            or self.warnings_removed
        )

    def lines(self) -> list[str]:
        """A readable report, one change per line."""
        out = []
        if self.error_current != self.error_proposed:
            out.append(f"~ error: {self.error_current} -> {self.error_proposed}")
        out += [f"ImagingStudy {c}" for c in self.imaging_study]
        out += [f"Endpoint {c}" for c in self.endpoint]
        out += [f"links {c}" for c in self.links]
        out += [f"+ warning {w}" for w in self.warnings_added]
        out += [f"- warning {w}" for w in self.warnings_removed]
        return out


def _links(result: MappingResult) -> dict[str, Any]:
    patient = result.patient
    return {
        "patient": {
            "system": patient.system,
            "value": patient.value,
            "policy": patient.policy,
            "resource": patient.resource(),
        },
        "serviceRequests": [link.identifier for link in result.service_requests],
    }


def diff_results(current: MappingResult, proposed: MappingResult) -> StudyDiff:
    """Compare the results of two mappings for the same study."""
    old_warnings = [str(w) for w in current.warnings]
    new_warnings = [str(w) for w in proposed.warnings]
    return StudyDiff(
        study_uid=current.study_uid,
        imaging_study=diff_json(current.imaging_study, proposed.imaging_study),
        endpoint=diff_json(current.endpoint, proposed.endpoint),
        links=diff_json(_links(current), _links(proposed)),
        warnings_added=[w for w in new_warnings if w not in old_warnings],
        warnings_removed=[w for w in old_warnings if w not in new_warnings],
    )


def compare_study(
    current: MappingEngine,
    proposed: MappingEngine,
    instances: Sequence[DicomJson],
    *,
    endpoint: EndpointSpec,
    study_uid: str = "",
) -> StudyDiff:
    """Map one study with both engines and diff the results (a study one mapping cannot map
    at all is reported with the error, not raised)."""
    results: list[MappingResult | None] = []
    errors: list[str | None] = []
    for engine in (current, proposed):
        try:
            results.append(engine.map_study(instances, endpoint=endpoint))
            errors.append(None)
        except DicomDataError as exc:
            results.append(None)
            errors.append(exc.message)
    old, new = results
    if old is not None and new is not None:
        return diff_results(old, new)
    either = old if old is not None else new
    uid = either.study_uid if either is not None else study_uid
    return StudyDiff(study_uid=uid, error_current=errors[0], error_proposed=errors[1])
