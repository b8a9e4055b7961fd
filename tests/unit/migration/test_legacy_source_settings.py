"""Settings of a legacy DIMSE source: AE titles per PS3.5 6.2, throttles, time windows."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.sections.migration import LegacySourceSettings, MigrationSettings, TimeWindow


def source(**overrides: Any) -> LegacySourceSettings:
    values: dict[str, Any] = {"name": "old-pacs", "ae_title": "OLDPACS", "host": "10.0.0.5",
                              "port": 104}
    values.update(overrides)
    return LegacySourceSettings.model_validate(values)


def test_defaults_give_our_calling_ae_and_two_associations() -> None:
    s = source()
    assert (s.calling_ae_title, s.max_associations, s.instances_per_second) == (
        "IMAGING-BRIDGE", 2, None)


def test_ae_title_spaces_around_are_removed() -> None:
    assert source(ae_title="  OLDPACS ").ae_title == "OLDPACS"


@pytest.mark.parametrize("title", ["", "    ", "A" * 17, "OLD\\PACS", "OLD\tPACS", "PACSé"])
def test_invalid_ae_title_is_refused(title: str) -> None:
    with pytest.raises(ValidationError, match="AE title"):
        source(ae_title=title)


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="max_asociations"):
        source(max_asociations=3)


@pytest.mark.parametrize("field,value", [("port", 0), ("port", 65536), ("max_associations", 0),
                                         ("instances_per_second", 0), ("max_results", 0)])
def test_out_of_range_values_are_refused(field: str, value: int) -> None:
    with pytest.raises(ValidationError, match=field):
        source(**{field: value})


def test_night_window_spans_midnight() -> None:
    night = TimeWindow(start=time(19), end=time(7))
    assert night.allows(time(23, 30)) and night.allows(time(0)) and night.allows(time(6, 59))
    assert not night.allows(time(7)) and not night.allows(time(12))


def test_source_without_windows_is_open_at_any_time() -> None:
    assert source().open_at(time(12))
    windows = [{"start": "19:00", "end": "07:00"}, {"start": "12:00", "end": "13:00"}]
    s = source(time_windows=windows)
    assert s.open_at(time(12, 30)) and s.open_at(time(20)) and not s.open_at(time(9))


def test_window_with_offset_is_refused() -> None:
    with pytest.raises(ValidationError, match="local time"):
        TimeWindow.model_validate({"start": "19:00+01:00", "end": "07:00"})


def test_source_names_are_unique() -> None:
    one = {"name": "a", "ae_title": "A", "host": "h", "port": 104}
    with pytest.raises(ValidationError, match="used twice"):
        MigrationSettings.model_validate({"sources": [one, one]})
    assert MigrationSettings.model_validate({"sources": [one]}).source("a").ae_title == "A"
