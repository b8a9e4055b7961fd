"""The migration gateway's QIDO-RS union, without servers: the C-FIND identifier of a
search, the rows it turns into, the merge (the archive wins), the compartment's
post-filter on legacy rows and a source that is down."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from bridge.gateway.compartment import PatientMapper
from bridge.gateway.errors import NotAcceptable
from bridge.gateway.legacy_union import (
    merge_studies,
    patient_matches,
    patient_rows,
    warning_header,
)
from bridge.gateway.legacy_wado import legacy_answer
from bridge.gateway.paths import parse
from bridge.mapping import load_mapping
from bridge.migration.association import FindAnswer
from bridge.migration.errors import LegacyUnavailable
from bridge.migration.gateway_union import (
    FIRST,
    LegacyUnion,
    StoreQueue,
    identifier_row,
    study_identifier,
)
from bridge.state.store import open_store
from samples.generator import generate_studies
from tests.integration.migration.legacy_servers import settings_for

MRN_A = "https://hospital-a.example.org/fhir/sid/mrn"


def _row(uid: str, pid: str = "P1", issuer: str = "HOSP_A") -> dict[str, Any]:
    return {"0020000D": {"vr": "UI", "Value": [uid]},
            "00100020": {"vr": "LO", "Value": [pid]},
            "00100021": {"vr": "LO", "Value": [issuer]}}


def _mapper() -> PatientMapper:
    return PatientMapper(load_mapping(["mappings/default.yaml"]))


def test_search_keys_become_a_study_level_identifier() -> None:
    ds = study_identifier([("StudyDate", "20200101-20201231"),
                           ("0020000D", "1.2,1.3"), ("includefield", "StudyDescription"),
                           ("limit", "10")], ("P1", "HOSP_A"))
    assert ds is not None
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.StudyDate == "20200101-20201231"
    assert list(ds.StudyInstanceUID) == ["1.2", "1.3"]
    assert (ds.PatientID, ds.IssuerOfPatientID) == ("P1", "HOSP_A")
    assert "StudyDescription" in ds and "PatientName" in ds


def test_a_key_a_legacy_c_find_cannot_match_is_not_asked() -> None:
    assert study_identifier([("SeriesDescription", "x")], None) is None
    assert study_identifier([("00100024.00400032", "x")], None) is None


def test_identifier_row_says_where_the_study_lives() -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = "1.2"
    row = identifier_row(ds, "LEGACY-QR")
    assert "00080052" not in row
    assert row["00080054"] == {"vr": "AE", "Value": ["LEGACY-QR"]}
    assert row["00080056"] == {"vr": "CS", "Value": ["NEARLINE"]}


def test_archive_row_wins_and_limit_counts_the_union() -> None:
    archive = [_row("1.1") | {"00081030": {"vr": "LO", "Value": ["archive"]}}]
    legacy = [_row("1.1"), _row("1.2"), _row("1.2"), _row("1.3")]
    merged = merge_studies(archive, legacy)
    assert [r["0020000D"]["Value"][0] for r in merged] == ["1.1", "1.2", "1.3"]
    assert merged[0] is archive[0]
    assert len(merge_studies(archive, legacy, limit=2)) == 2


def test_legacy_rows_of_another_patient_are_dropped() -> None:
    mapper = _mapper()
    ids = frozenset({(MRN_A, "P1")})
    rows = [_row("1.1"), _row("1.2", pid="P2"), _row("1.3", issuer="HOSP_B"),
            {"0020000D": {"vr": "UI", "Value": ["1.4"]}}]
    assert [r["0020000D"]["Value"][0] for r in patient_rows(rows, ids, mapper)] == ["1.1"]
    assert patient_matches(ids, mapper) == [("P1", "HOSP_A")]


class _Source:
    def __init__(self, name: str, rows: list[Dataset] | None) -> None:
        self.settings = settings_for(name, name.upper(), 104)
        self.name = name
        self._rows = rows

    async def find(self, query: Dataset) -> FindAnswer:
        if self._rows is None:
            raise LegacyUnavailable(f"{self.name} refused the connection")
        return FindAnswer(self._rows, capped=False)


def test_a_source_down_is_a_problem_not_an_error() -> None:
    ds = Dataset()
    ds.StudyInstanceUID = "1.9"
    union = LegacyUnion([_Source("down", None), _Source("up", [ds])])  # type: ignore[list-item]
    answer = asyncio.run(union.studies([], patients=None))
    assert [r["0020000D"]["Value"] for r in answer.rows] == [["1.9"]]
    assert len(answer.problems) == 1 and "down" in answer.problems[0]
    assert warning_header(answer.problems).startswith('299 imaging-bridge "')
    assert asyncio.run(union.studies([("offset", "5")], patients=None)).rows == []


def _files() -> list[bytes]:
    study = next(iter(generate_studies(1, seed=7, profile="small")))
    return list(study.part10())


def test_legacy_instances_answer_as_multipart_and_metadata_without_bulk_data() -> None:
    files = _files()
    ds = dcmread(io.BytesIO(files[0]), stop_before_pixels=True)
    study = str(ds.StudyInstanceUID)
    whole = legacy_answer(parse(f"studies/{study}"), files)
    assert whole.headers["content-type"].startswith('multipart/related; type="application/dicom"')
    assert all(f in bytes(whole.body) for f in files)
    one = legacy_answer(parse(f"studies/{study}/series/{ds.SeriesInstanceUID}/instances/"
                              f"{ds.SOPInstanceUID}"), files)
    assert files[0] in bytes(one.body) and all(f not in bytes(one.body) for f in files[1:])
    meta = json.loads(bytes(legacy_answer(parse(f"studies/{study}/metadata"), files).body))
    assert len(meta) == len(files) and all("7FE00010" not in row for row in meta)
    with pytest.raises(NotAcceptable):
        legacy_answer(parse(f"studies/{study}/rendered"), files)


def test_a_viewers_study_is_queued_first_in_a_store_opened_on_use(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    queue = StoreQueue(url)
    union = LegacyUnion([], enqueue=queue)
    store = open_store(url)
    store.enqueue_task("migrate.up", "1.1")  # the inventory's, due now
    queue("migrate.up", "1.2", due_at=FIRST)
    claimed = store.claim_tasks("migrate.up", limit=1, worker="t", lease_seconds=5)
    assert [t.key for t in claimed] == ["1.2"]
    asyncio.run(union.aclose())
    assert queue._store is None
    store.close()
