"""The legacy source's throttles: instances per second and reading hours."""

from __future__ import annotations

from datetime import datetime

import pytest

from bridge.clock import ManualClock
from bridge.migration.throttle import InstanceRate, seconds_until_open
from bridge.sections.migration import LegacySourceSettings


def test_rate_spaces_instances_once_the_burst_is_spent() -> None:
    clock = ManualClock()
    rate = InstanceRate(10, burst=2, clock=clock)
    assert [rate.reserve() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.1, 0.2])


def test_rate_counts_a_batch_as_its_instances() -> None:
    clock = ManualClock()
    rate = InstanceRate(10, clock=clock)
    assert rate.reserve(5) == 0.0
    assert rate.reserve(1) == pytest.approx(0.5)
    clock.advance(2.0)
    assert rate.reserve(1) == 0.0  # idle time is not saved up beyond the burst
    assert rate.reserve(1) == pytest.approx(0.1)


def test_no_limit_never_waits() -> None:
    rate = InstanceRate(None, clock=ManualClock())
    assert rate.reserve(1000) == 0.0


def night_source() -> LegacySourceSettings:
    return LegacySourceSettings.model_validate({
        "name": "old", "ae_title": "OLD", "host": "h", "port": 104,
        "time_windows": [{"start": "19:00", "end": "07:00"}]})


def test_closed_source_waits_for_its_next_window() -> None:
    assert seconds_until_open(night_source(), datetime(2026, 3, 2, 18, 30)) == 1800.0
    assert seconds_until_open(night_source(), datetime(2026, 3, 2, 7, 0)) == 12 * 3600.0


def test_open_source_does_not_wait() -> None:
    assert seconds_until_open(night_source(), datetime(2026, 3, 2, 23, 0)) == 0.0
    always = night_source().model_copy(update={"time_windows": []})
    assert seconds_until_open(always, datetime(2026, 3, 2, 12, 0)) == 0.0
