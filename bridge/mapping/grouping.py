"""Grouping a study's instance datasets into series, in a deterministic order.

Order is part of the output (content hashes compare bytes): series by SeriesNumber then
Series Instance UID, instances by InstanceNumber then SOP Instance UID, absent numbers last.
This is the hot loop of the engine (one pass over every instance), so the common, clean
case is read with direct dict access and UIDs repeated on every instance (study, series,
SOP class) are checked once per study.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import DicomDataError
from bridge.mapping import dicom_json as dj
from bridge.mapping import tags as t
from bridge.mapping import values as v
from bridge.mapping.problems import Problem
from bridge.mapping.sink import WarningSink

NOT_A_DATASET = Problem(
    "malformed-json", "instance is not a DICOM JSON dataset (PS3.18 F.2): ignored"
)
NOT_A_SERIES_RECORD = Problem("malformed-json", "series record is not a dataset: ignored")
NO_SOP_INSTANCE = Problem(
    "missing-sop-instance-uid", "absent or unusable: the instance is counted but not listed"
)
DUPLICATE = Problem(
    "duplicate-instance", "the same SOP Instance UID was returned more than once: listed once"
)

SortKey = tuple[bool, int, str, str]


def _stable_text(ds: dj.Dataset) -> str:
    """A canonical text of a dataset, only to break ties between garbage rows."""
    try:
        return json.dumps(ds, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(sorted(map(repr, ds.items())))


class Row:
    """One instance: its SOP Instance UID, InstanceNumber, dataset and sort key."""

    __slots__ = ("ds", "key", "number", "uid")

    def __init__(self, uid: str | None, number: int | None, ds: dj.Dataset) -> None:
        self.uid = uid
        self.number = number
        self.ds = ds
        # numbered first, by number, then UID; rows without a UID (never listed) are
        # ordered by content so the representative dataset does not depend on input order
        tie = "" if uid is not None else _stable_text(ds)
        self.key: SortKey = (number is None, number or 0, uid or "", tie)


@dataclass(slots=True)
class SeriesData:
    """Everything known about one series: its instances and its QIDO series record."""

    uid: str
    rows: list[Row] = field(default_factory=list)
    by_sop: dict[str, Row] = field(default_factory=dict)
    record: dj.Dataset | None = None
    #: attributes of the series: its first instance over the series record
    ds: dj.Dataset = field(default_factory=dict)
    number: int | None = None
    #: NumberOfSeriesRelatedInstances (0020,1209) as the archive reported it
    recorded: int | None = None

    @property
    def count(self) -> int:
        """Instances seen, or the archive's NumberOfSeriesRelatedInstances if larger (the
        instance list may be partial; a count below what we saw is stale)."""
        return max(len(self.rows), self.recorded or 0)


def required_uid(ds: dj.Dataset, tag: str, sink: WarningSink, where: str | None = None) -> str:
    """A UID the study cannot be mapped without; DicomDataError naming the tag otherwise."""
    found = dj.uid(ds, tag, sink, where)
    if found is None:
        raise DicomDataError(
            f"{t.label(tag)} is missing or not a valid UID" + (f" ({where})" if where else ""),
            tag=t.label(tag),
        )
    return found


def _add_row(series: SeriesData, row: Row, sink: WarningSink, where: str) -> None:
    if row.uid is None:
        series.rows.append(row)
        return
    previous = series.by_sop.get(row.uid)
    if previous is None:
        series.by_sop[row.uid] = row
        series.rows.append(row)
        return
    sink.add(t.SOP_INSTANCE_UID, row.uid, DUPLICATE, where)
    if (row.key, _stable_text(row.ds)) < (previous.key, _stable_text(previous.ds)):
        previous.number, previous.ds, previous.key = row.number, row.ds, row.key


def collect(
    sink: WarningSink,
    study_uid: str,
    instances: Sequence[Mapping[str, Any]],
    series_records: Sequence[Mapping[str, Any]],
) -> list[SeriesData]:
    """Group instances by series, merge in the series records, sort everything.

    Raises DicomDataError when an instance lacks a Study or Series Instance UID or belongs
    to another study.
    """
    by_uid: dict[str, SeriesData] = {}
    checked: set[str] = {study_uid}  # UIDs already found valid in this study
    uid_pattern = v.UID_PATTERN.fullmatch
    for ds in instances:
        if type(ds) is not dict:
            sink.add(t.SOP_INSTANCE_UID, ds, NOT_A_DATASET)
            continue
        # fast path: direct reads of the clean case; anything else goes through dicom_json,
        # which reports the problem (PS3.18 F.2.2 element, PS3.5 9.1 UID)
        try:
            found = ds[t.STUDY_INSTANCE_UID]["Value"]
            value = found[0] if type(found) is list else None
        except (KeyError, IndexError, TypeError):
            value = None
        if value != study_uid and required_uid(ds, t.STUDY_INSTANCE_UID, sink) != study_uid:
            raise DicomDataError(
                "instances of more than one study were passed to map_study",
                tag=t.label(t.STUDY_INSTANCE_UID),
            )
        try:
            found = ds[t.SERIES_INSTANCE_UID]["Value"]
            series_uid = found[0] if type(found) is list else None
        except (KeyError, IndexError, TypeError):
            series_uid = None
        if type(series_uid) is not str or series_uid not in checked:
            series_uid = required_uid(ds, t.SERIES_INSTANCE_UID, sink)
            checked.add(series_uid)
        series = by_uid.get(series_uid)
        if series is None:
            series = by_uid[series_uid] = SeriesData(series_uid)
        try:
            found = ds[t.SOP_INSTANCE_UID]["Value"]
            sop_uid = found[0] if type(found) is list else None
        except (KeyError, IndexError, TypeError):
            sop_uid = None
        if type(sop_uid) is not str or len(sop_uid) > 64 or uid_pattern(sop_uid) is None:
            where = f"series {series_uid}"
            sop_uid = dj.uid(ds, t.SOP_INSTANCE_UID, sink, where)
            if sop_uid is None and t.SOP_INSTANCE_UID not in ds:
                sink.add(t.SOP_INSTANCE_UID, None, NO_SOP_INSTANCE, where)
        try:
            found = ds[t.INSTANCE_NUMBER]["Value"]
            number = found[0] if type(found) is list else None
        except (KeyError, IndexError, TypeError):
            number = None
        if type(number) is not int or not v.IS_MIN <= number <= v.IS_MAX:
            number = dj.integer(ds, t.INSTANCE_NUMBER, sink, f"series {series_uid}")
        row = Row(sop_uid, number, ds)
        if sop_uid is not None and sop_uid not in series.by_sop:
            series.by_sop[sop_uid] = row
            series.rows.append(row)
        else:
            _add_row(series, row, sink, f"series {series_uid}")
    for record in series_records:
        if type(record) is not dict:
            sink.add(t.SERIES_INSTANCE_UID, record, NOT_A_SERIES_RECORD)
            continue
        series_uid = required_uid(record, t.SERIES_INSTANCE_UID, sink, "series record")
        series = by_uid.get(series_uid)
        if series is None:
            series = by_uid[series_uid] = SeriesData(series_uid)
        series.record = record
    for series in by_uid.values():
        series.rows.sort(key=lambda row: row.key)
        first = series.rows[0].ds if series.rows else {}
        series.ds = {**series.record, **first} if series.record else first
        where = f"series {series.uid}"
        series.number = dj.integer(series.ds, t.SERIES_NUMBER, sink, where)
        series.recorded = dj.integer(series.ds, t.NUMBER_OF_SERIES_RELATED_INSTANCES, sink, where)
    return sorted(by_uid.values(), key=lambda s: (s.number is None, s.number or 0, s.uid))
