"""The worklist's settings and its place in ``serve``: validated at start-up, built by the
composition root as a room service when enabled, and the service polls on its interval and
stops its SCP when asked."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from bridge import assembly
from bridge.config import Settings
from bridge.errors import FhirBusy
from bridge.sections.base import FhirSettings
from bridge.sections.worklist import WorklistSettings
from bridge.urls import PublicUrls
from bridge.worklist.poller import PollStatus
from bridge.worklist.scp import WorklistScp
from bridge.worklist.service import WorklistService
from bridge.worklist.source import InMemoryWorklist


def test_enabled_without_calling_ae_titles_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"worklist\.calling_ae_titles"):
        WorklistSettings(enabled=True)


@pytest.mark.parametrize("title", ["", "WAY_TOO_LONG_AE_TITLE", "BACK\\SLASH"])
def test_a_calling_ae_title_that_is_not_an_ae_is_refused(title: str) -> None:
    with pytest.raises(ValidationError, match="AE titles"):
        WorklistSettings(calling_ae_titles=[title])


def test_subscribe_without_a_notification_token_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"worklist\.subscribe"):
        WorklistSettings(enabled=True, calling_ae_titles=["CT1"], subscribe=True)


def test_the_order_category_is_a_token() -> None:
    with pytest.raises(ValidationError, match="system\\|code"):
        WorklistSettings(order_category="363679005")
    assert WorklistSettings(order_category="").order_category == ""


def _settings(enabled: bool) -> Settings:
    return Settings.model_validate({
        "archives": [{"name": "main", "base_url": "http://127.0.0.1:9/dicom-web"}],
        "fhir": {"base_url": "http://127.0.0.1:9/fhir"},
        "worklist": {"enabled": enabled, "calling_ae_titles": ["CT1"], "port": 0}})


def test_serve_runs_the_worklist_as_a_room_when_enabled() -> None:
    sync = cast(Any, SimpleNamespace(fhir=object(), store=None))
    urls = cast(PublicUrls, None)
    rooms = assembly.room_services(_settings(True), sync=sync, urls=urls)
    assert [r.name for r in rooms] == ["worklist"]
    assert assembly.room_services(_settings(False), sync=sync, urls=urls) == []


class _Poller:
    def __init__(self, fail: bool) -> None:
        self.polls = 0
        self.fail = fail
        self.status = PollStatus()

    async def poll(self) -> None:
        self.polls += 1
        if self.fail:
            raise FhirBusy("EHR down")


@pytest.mark.parametrize("fail", [False, True])
async def test_the_service_polls_until_stopped_and_a_failed_poll_does_not_end_it(
        fail: bool) -> None:
    scp = WorklistScp(source=InMemoryWorklist(), ae_title="MWL", calling_ae_titles=["CT1"])
    poller = _Poller(fail)
    service = WorklistService(scp=scp, poller=cast(Any, poller), interval=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    while poller.polls < 3:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert task.exception() is None
    with pytest.raises(RuntimeError, match="not started"):
        _ = scp.port


async def test_a_notification_makes_the_service_poll_before_its_interval() -> None:
    scp = WorklistScp(source=InMemoryWorklist(), ae_title="MWL", calling_ae_titles=["CT1"],
                      port=0)
    poller = _Poller(False)
    service = WorklistService(scp=scp, poller=cast(Any, poller), interval=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    while poller.polls < 1:  # the first poll, at start
        await asyncio.sleep(0.01)
    service.notify()
    service.notify()  # coalesced with the first while it waits
    while poller.polls < 2:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert poller.polls == 2
    assert service.status()["notifications"] == 2


async def test_the_subscription_is_made_after_the_first_poll_and_its_failure_is_not_fatal(
        ) -> None:
    scp = WorklistScp(source=InMemoryWorklist(), ae_title="MWL", calling_ae_titles=["CT1"],
                      port=0)
    poller = _Poller(False)
    calls: list[int] = []

    async def subscribe() -> str:
        calls.append(poller.polls)
        raise FhirBusy("EHR down")

    service = WorklistService(scp=scp, poller=cast(Any, poller), interval=0.01,
                              subscribe=subscribe)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    while poller.polls < 2:  # it went on polling
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert calls == [1]


def test_the_status_shows_the_lists_age_and_the_last_error() -> None:
    poller = _Poller(False)
    poller.status.last_success = dt.datetime(2026, 12, 8, 10, 0, tzinfo=dt.UTC)
    poller.status.last_error = "FhirBusy: FHIR server unreachable"
    poller.status.refused = {"ServiceRequest.subject": 2}
    scp = WorklistScp(source=InMemoryWorklist(), ae_title="MWL", calling_ae_titles=["CT1"])
    service = WorklistService(scp=scp, poller=cast(Any, poller), interval=1)
    shown = service.status(dt.datetime(2026, 12, 8, 10, 5, tzinfo=dt.UTC))
    assert shown["age_seconds"] == 300.0
    assert shown["last_error"].startswith("FhirBusy")
    assert shown["refused"] == {"ServiceRequest.subject": 2}


def test_fhir_settings_are_the_only_remote_the_worklist_needs() -> None:
    # the builder takes the worklist's own section and a FHIR client, never Settings
    built = assembly.worklist_service(WorklistSettings(calling_ae_titles=["CT1"], port=0),
                                      fhir=cast(Any, FhirSettings()))
    assert built.name == "worklist" and built.interval == 10.0
