"""The index (bridge.worklist.index) only narrows: over a generated worklist of 1,200
items, every query shape gives exactly the answers of the plain matcher over every item,
in the same order.  This guards the C-FIND optimisation (docs/worklist.md, benchmark)."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from bridge.worklist.index import WorklistIndex
from bridge.worklist.matching import Matcher, check_query
from bridge.worklist.source import InMemoryWorklist

MODALITIES = ("CT", "MR", "US", "CR", "DX")
STATIONS = ("CT_1", "CT_2", "MR_1", "US_1", "XR_1", "XR_2", "XR_3")
NAMES = ("Müller^Anna", "Smith^John", "Yamada^Taro=山田^太郎", "Doe^Jane", "O'Brien^Pat")


def _step(n: int, k: int) -> Dataset:
    step = Dataset()
    step.Modality = MODALITIES[(n + k) % len(MODALITIES)]
    step.ScheduledStationAETitle = STATIONS[(n * 3 + k) % len(STATIONS)]
    day = (n * 7 + k) % 40  # 20261201 .. 20270109, across a month and a year
    step.ScheduledProcedureStepStartDate = (f"202612{day + 1:02d}" if day < 31
                                            else f"202701{day - 30:02d}")
    # every 13th step has no time, every 17th an empty date, every 19th a padded AE
    time = f"{(n % 12) + 7:02d}{n % 60:02d}00"
    step.ScheduledProcedureStepStartTime = "" if n % 13 == 0 else time
    if n % 17 == 0:
        step.ScheduledProcedureStepStartDate = ""
    if n % 19 == 0:
        step.ScheduledStationAETitle = step.ScheduledStationAETitle + " "
    step.ScheduledProcedureStepID = f"S{n}-{k}"
    return step


def _item(n: int) -> Dataset:
    item = Dataset()
    item.PatientName = NAMES[n % len(NAMES)]
    item.PatientID = f"MRN-{n % 300}"  # several items per patient
    item.AccessionNumber = "" if n % 23 == 0 else f"A{n:05d}"
    item.StudyInstanceUID = f"2.25.{n}"
    # one to three steps; every 29th item has none (an empty sequence)
    item.ScheduledProcedureStepSequence = [] if n % 29 == 0 else [
        _step(n, k) for k in range(1 + n % 3)]
    return item


ITEMS = [_item(n) for n in range(1200)]


def _query(steps: dict[str, str] | None = None, **keys: str) -> Dataset:
    query = Dataset()
    query.PatientName = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    if steps is not None:
        step = Dataset()
        for keyword, value in steps.items():
            setattr(step, keyword, value)
        query.ScheduledProcedureStepSequence = [step]
    check_query(query)
    return query


SHAPES: list[dict[str, Any]] = [
    {},
    {"AccessionNumber": "A00042"},
    {"AccessionNumber": "A0004*"},
    {"AccessionNumber": "A99999"},
    {"AccessionNumber": "*"},
    {"PatientID": "MRN-42"},
    {"PatientID": "MRN-4?"},
    {"PatientID": "MRN-42", "AccessionNumber": "A00342"},
    {"PatientID": "MRN-42", "AccessionNumber": "A00043"},
    {"PatientName": "smith^john"},
    {"PatientName": "山田*"},
    {"steps": {}},
    {"steps": {"Modality": "CT"}},
    {"steps": {"Modality": "C?"}},
    {"steps": {"Modality": "NM"}},
    {"steps": {"ScheduledStationAETitle": "XR_2"}},
    {"steps": {"ScheduledStationAETitle": "XR_*"}},
    {"steps": {"Modality": "DX", "ScheduledStationAETitle": "XR_1"}},
    {"steps": {"ScheduledProcedureStepStartDate": "20261215"}},
    {"steps": {"ScheduledProcedureStepStartDate": "20261228-20270103"}},
    {"steps": {"ScheduledProcedureStepStartDate": "20270105-"}},
    {"steps": {"ScheduledProcedureStepStartDate": "-20261203"}},
    {"steps": {"ScheduledProcedureStepStartDate": "20250101-20251231"}},
    {"steps": {"ScheduledProcedureStepStartDate": "20261215",
               "ScheduledProcedureStepStartTime": "0900-1200"}},
    {"steps": {"ScheduledProcedureStepStartDate": "20261210-20261220",
               "ScheduledProcedureStepStartTime": "1000"}},
    {"steps": {"ScheduledProcedureStepStartDate": "20261231-20270102",
               "ScheduledProcedureStepStartTime": "1530-0800"}},
    {"steps": {"ScheduledProcedureStepStartDate": "20261201-",
               "ScheduledProcedureStepStartTime": "-0830"}},
    {"steps": {"ScheduledProcedureStepStartDate": "",
               "ScheduledProcedureStepStartTime": "1000-1100"}},
    {"steps": {"Modality": "MR", "ScheduledStationAETitle": "MR_1",
               "ScheduledProcedureStepStartDate": "20261205-20261225"}},
    {"AccessionNumber": "A00100", "steps": {
        "Modality": "US", "ScheduledProcedureStepStartDate": "20261201-20270109"}},
    {"PatientID": "MRN-7", "steps": {"ScheduledStationAETitle": "CT_2",
                                     "ScheduledProcedureStepStartDate": "-20261220"}},
    {"steps": {"Modality": "CT", "ScheduledProcedureStepStartDate": "20261209",
               "ScheduledProcedureStepID": "S*"}},
]


@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_the_index_gives_the_plain_matchers_answers(shape: dict[str, Any]) -> None:
    keys = {k: v for k, v in shape.items() if k != "steps"}
    steps = shape.get("steps")
    query = _query(steps if isinstance(steps, dict) else None, **{
        k: str(v) for k, v in keys.items()})
    matcher = Matcher(query)
    plain = [item.StudyInstanceUID for item in ITEMS if matcher.matches(item)]
    indexed = [item.StudyInstanceUID
               for item in WorklistIndex(ITEMS).candidates(query) if matcher.matches(item)]
    assert indexed == plain


def test_the_queries_cover_matches_and_narrowing() -> None:
    """The shapes are not vacuous: many match something, and the index narrows most."""
    index = WorklistIndex(ITEMS)
    matched = narrowed = 0
    for shape in SHAPES:
        steps = shape.get("steps")
        query = _query(steps if isinstance(steps, dict) else None, **{
            k: str(v) for k, v in shape.items() if k != "steps"})
        matched += any(Matcher(query).matches(item) for item in ITEMS)
        narrowed += len(index.candidates(query)) < len(ITEMS)
    assert matched >= 25
    assert narrowed >= 20


def test_a_replaced_worklist_is_indexed_anew() -> None:
    source = InMemoryWorklist(ITEMS[:10])
    query = _query(AccessionNumber="A00500")
    assert list(source.candidates(query)) == []
    source.replace(ITEMS)
    assert [i.AccessionNumber for i in source.candidates(query)] == ["A00500"]
