"""QIDO-RS parameter checks of the gateway (issue 12 item 12; PS3.18 8.3.4), without servers.
The same cases through the gateway to a real Orthanc: tests/integration/gateway/
test_gateway_query_params.py."""

from __future__ import annotations

import pytest

from bridge.gateway.errors import InvalidQueryParameter
from bridge.gateway.query_params import MAX_COUNT, checked_query, is_attribute_id


@pytest.mark.parametrize(("params", "parameter"), [
    ([("limit", "abc")], "limit"),
    ([("limit", "1e20")], "limit"),
    ([("limit", "-5")], "limit"),
    ([("limit", "+5")], "limit"),
    ([("limit", " 5")], "limit"),
    ([("limit", "\u0665")], "limit"),  # ARABIC-INDIC DIGIT FIVE: a digit, not ASCII
    ([("offset", "")], "offset"),
    ([("offset", "1"), ("offset", "2")], "offset"),
    ([("fuzzymatching", "maybe")], "fuzzymatching"),
    ([("fuzzymatching", "true"), ("fuzzymatching", "false")], "fuzzymatching"),
    ([("multiplevaluematching", "yes")], "multiplevaluematching"),
    ([("includefield", "")], "includefield"),
    ([("includefield", "PatientName,,StudyDate")], "includefield"),
    ([("includefield", "Patient-Name")], "includefield"),
    ([("NoSuchKeyword", "x")], "NoSuchKeyword"),
    ([("0010002", "x")], "0010002"),
    ([("PatientName.", "x")], "PatientName."),
])
def test_malformed_parameters_are_refused_naming_them(params: list[tuple[str, str]],
                                                      parameter: str) -> None:
    with pytest.raises(InvalidQueryParameter, match=parameter) as caught:
        checked_query(params)
    assert caught.value.parameter == parameter and caught.value.http_status == 400


def test_well_formed_parameters_pass_and_counts_are_normalised_and_capped() -> None:
    given = [("PatientID", "123"), ("00100021", "HOSP"), ("limit", "007"),
             ("offset", "99999999999999999999"), ("fuzzymatching", "true"),
             ("includefield", "all"), ("includefield", "StudyDescription,00080060"),
             ("OtherPatientIDsSequence.PatientID", "x"), ("charset", "utf-8")]
    assert checked_query(given) == [
        ("PatientID", "123"), ("00100021", "HOSP"), ("limit", "7"),
        ("offset", str(MAX_COUNT)), ("fuzzymatching", "true"), ("includefield", "all"),
        ("includefield", "StudyDescription,00080060"),
        ("OtherPatientIDsSequence.PatientID", "x"), ("charset", "utf-8")]


def test_attribute_ids_are_keywords_or_hex_tags() -> None:
    assert is_attribute_id("PatientName") and is_attribute_id("0010ABCD")
    assert is_attribute_id("00081115.0020000E")
    for bad in ("", "patient name", "Patientname", "1e20", "PatientName.."):
        assert not is_attribute_id(bad), bad
