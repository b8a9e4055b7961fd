"""PS3.4 C.2.2.2 / K.6 matching on worklist items: each kind of key, and the queries that
must be refused with a status."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from bridge.worklist.errors import QueryError
from bridge.worklist.matching import check_query, matches, response


def _step(**values: Any) -> Dataset:
    step = Dataset()
    step.ScheduledStationAETitle = values.get("ae", "CT_SCANNER_1")
    step.Modality = values.get("modality", "CT")
    step.ScheduledProcedureStepStartDate = values.get("date", "20261209")
    step.ScheduledProcedureStepStartTime = values.get("time", "093000")
    step.ScheduledProcedureStepID = values.get("step_id", "ACC1")
    return step


def _item(*steps: Dataset, **values: Any) -> Dataset:
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 192"
    item.PatientName = values.get("name", "Müller^Anna")
    item.PatientID = values.get("pid", "MRN-42")
    item.AccessionNumber = values.get("accession", "ACC1")
    item.StudyInstanceUID = values.get("uid", "2.25.1")
    item.PatientBirthDate = values.get("birth", "19700517")
    item.ScheduledProcedureStepSequence = list(steps) or [_step()]
    return item


def _query(steps: list[dict[str, str]] | None = None, **keys: str) -> Dataset:
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    if steps is not None:
        items = []
        for values in steps:
            step = Dataset()
            for keyword, value in values.items():
                setattr(step, keyword, value)
            items.append(step)
        query.ScheduledProcedureStepSequence = items
    check_query(query)
    return query


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize(("keys", "expected"), [
    ({"PatientID": "MRN-42"}, True),
    ({"PatientID": "MRN-4"}, False),
    ({"PatientID": ""}, True),  # universal
    ({"PatientID": "*"}, True),
    ({"PatientID": "MRN-4?"}, True),
    ({"PatientID": "MRN-4"}, False),
    ({"PatientID": "mrn-42"}, False),  # LO is case-sensitive
    ({"PatientName": "müller^anna"}, True),  # PN is not (C.2.2.2.1)
    ({"PatientName": "Mü*"}, True),
    ({"PatientName": "M?ller*"}, True),
    ({"PatientName": "Meier*"}, False),
    ({"AccessionNumber": "ACC1", "PatientID": "other"}, False),  # every key must match
    ({"StudyInstanceUID": "2.25.9\\2.25.1"}, True),  # list of UIDs
    ({"StudyInstanceUID": "2.25.*"}, False),  # no wildcards in UI
    ({"PatientBirthDate": "19700101-19701231"}, True),
    ({"PatientBirthDate": "-19691231"}, False),
    ({"PatientBirthDate": "19700517-"}, True),
    ({"PatientBirthDate": "19700517"}, True),
])
def test_top_level_keys(keys: dict[str, str], expected: bool) -> None:
    assert matches(_query(**keys), _item()) is expected


@pytest.mark.parametrize(("name", "expected"), [
    ("山田*", True), ("yamada^taro", True), ("Yamada^Taro=山田^太郎", True), ("太郎*", False),
])
def test_a_person_name_query_matches_any_component_group(name: str, expected: bool) -> None:
    item = _item(name="Yamada^Taro=山田^太郎")
    assert matches(_query(PatientName=name), item) is expected


def test_a_key_the_item_has_no_value_for_matches_only_universally() -> None:
    item = _item(accession="")
    assert not matches(_query(AccessionNumber="ACC1"), item)
    assert matches(_query(AccessionNumber=""), item)


@pytest.mark.parametrize(("step", "expected"), [
    ({"ScheduledStationAETitle": "CT_SCANNER_1"}, True),
    ({"ScheduledStationAETitle": "MR_SCANNER_1"}, False),
    ({"Modality": "CT"}, True),
    ({"Modality": "MR"}, False),
    ({"ScheduledStationAETitle": "CT*", "Modality": "MR"}, False),
    ({"ScheduledProcedureStepStartDate": "20261209"}, True),
    ({"ScheduledProcedureStepStartDate": "20261201-20261208"}, False),
    ({"ScheduledProcedureStepStartTime": "0900-1000"}, True),
    ({"ScheduledProcedureStepStartTime": "0931-"}, False),
    ({"ScheduledProcedureStepStartTime": "-09"}, True),  # partial time covers 09:59:59
    ({"ScheduledProcedureStepStartTime": "0930"}, True),
    ({"ScheduledProcedureStepStartDate": "", "Modality": ""}, True),
])
def test_sequence_keys_on_the_scheduled_step(step: dict[str, str], expected: bool) -> None:
    assert matches(_query([step]), _item()) is expected


def test_an_empty_sequence_key_is_universal() -> None:
    assert matches(_query([]), _item())
    assert matches(_query([{}]), _item())


def test_one_matching_step_of_several_is_enough_and_only_it_is_returned() -> None:
    item = _item(_step(modality="CT", step_id="S1"), _step(modality="MR", ae="MR1",
                                                          step_id="S2"))
    query = _query([{"Modality": "MR", "ScheduledProcedureStepID": ""}])
    assert matches(query, item)
    steps = response(query, item).ScheduledProcedureStepSequence
    assert [(s.Modality, s.ScheduledProcedureStepID) for s in steps] == [("MR", "S2")]
    assert "ScheduledStationAETitle" not in steps[0]


def test_keys_of_one_sequence_item_must_match_the_same_step() -> None:
    item = _item(_step(modality="CT", ae="A1"), _step(modality="MR", ae="A2"))
    assert not matches(_query([{"Modality": "CT", "ScheduledStationAETitle": "A2"}]), item)


@pytest.mark.parametrize(("date", "time", "expected"), [
    # combined date-time range (C.2.2.2.5.1): from Dec 8 10:00 to Dec 9 09:00
    ("20261208-20261209", "1000-0900", False),
    ("20261208-20261209", "1000-0930", True),
    ("20261209-", "0930-", True),
    ("20261209-", "0931-", False),
    ("-20261209", "-0929", False),
])
def test_a_date_range_with_a_time_range_is_one_date_time_range(
    date: str, time: str, expected: bool
) -> None:
    query = _query([{"ScheduledProcedureStepStartDate": date,
                     "ScheduledProcedureStepStartTime": time}])
    assert matches(query, _item()) is expected


def test_the_response_holds_the_asked_keys_only() -> None:
    query = _query(PatientName="", AccessionNumber="ACC1", PatientSex="")
    answer = response(query, _item())
    assert [e.keyword for e in answer] == ["AccessionNumber", "PatientName", "PatientSex"]
    assert str(answer.PatientName) == "Müller^Anna"
    assert answer.PatientSex in (None, "")


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.parametrize(("keys", "steps", "keyword", "status"), [
    ({"PatientBirthDate": "1970-05-17"}, None, "PatientBirthDate", 0xC001),
    ({"PatientBirthDate": "2026120-20261209"}, None, "PatientBirthDate", 0xC001),
    ({"PatientBirthDate": "-"}, None, "PatientBirthDate", 0xC001),
    ({}, [{"ScheduledProcedureStepStartTime": "25xx"}],
     "ScheduledProcedureStepSequence>ScheduledProcedureStepStartTime", 0xC001),
    ({"SeriesInstanceUID": ""}, None, "SeriesInstanceUID", 0xA900),
    ({}, [{"SOPClassUID": ""}], "ScheduledProcedureStepSequence>SOPClassUID", 0xA900),
])
def test_malformed_or_unsupported_queries_raise_a_query_error_with_a_status(
    keys: dict[str, str], steps: list[dict[str, str]] | None, keyword: str, status: int
) -> None:
    with pytest.raises(QueryError) as err:
        _query(steps, **keys)
    assert (err.value.keyword, err.value.status) == (keyword, status)


def test_a_sequence_key_with_two_items_is_refused() -> None:
    with pytest.raises(QueryError, match="at most one item"):
        _query([{"Modality": "CT"}, {"Modality": "MR"}])
