"""Issue 12 item 15 (launch half): an unauthenticated ``GET /smart/launch`` must not let
anyone fill the state database.  A launch is stored only once it is valid and the EHR's
discovery answered, the pending launches are capped (the oldest make room), and each
client is rate limited before any of that."""

from __future__ import annotations

from pathlib import Path

import httpx
from sandbox_ehr import SandboxEhr
from sqlalchemy import MetaData, func, select

from bridge.clock import ManualClock
from bridge.state.engine import create_state_engine
from smart_app.pending import PendingLaunches
from smart_app.ratelimit import RateLimiter
from tests.unit.smart_app.conftest import PATIENT, AppFactory, Browser, RunningApp


def _rows(app: RunningApp) -> int:
    """Every row of the app's own tables (sessions and pending launches, however stored)."""
    engine = app.smart.store.engine
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return sum(int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                   for name, t in meta.tables.items() if name.startswith("smart_app"))


def _bogus_launches(app: RunningApp, ehr: SandboxEhr, n: int) -> list[httpx.Response]:
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        out = []
        for i in range(n):
            client.cookies.clear()  # each one a new "browser"
            out.append(client.get(f"{app.url}/smart/launch",
                                  params={"iss": ehr.fhir_url, "launch": f"bogus-{i}"}))
        return out


def test_a_thousand_bogus_launches_do_not_create_a_thousand_rows(
    ehr: SandboxEhr, make_app: AppFactory
) -> None:
    app = make_app()
    # time stands still during the flood (no refill): exactly the burst gets through
    app.smart.launch_limit = RateLimiter(rate_per_minute=30, clock=ManualClock())
    answers = _bogus_launches(app, ehr, 1000)
    limited = [r for r in answers if r.status_code == 429]
    assert limited and all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert {r.status_code for r in answers} == {302, 429}
    assert len(answers) - len(limited) == 30 and _rows(app) == 30


def test_pending_launches_are_capped_and_a_real_launch_still_completes(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app(launch_rate_per_minute=0, max_pending_launches=20)  # no rate limit
    answers = _bogus_launches(app, ehr, 60)
    assert all(r.status_code == 302 for r in answers)
    assert _rows(app) <= 20
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))  # after the flood
    assert page.status_code == 200 and str(page.url).endswith("/app/history")


def test_a_refused_launch_or_a_failed_discovery_stores_nothing(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    dead = "http://127.0.0.1:9/fhir"
    app = make_app(iss_allowlist=[ehr.fhir_url, dead])
    refused = browser.client.get(f"{app.url}/smart/launch",
                                 params={"iss": "https://evil.example/fhir", "launch": "x"})
    assert refused.status_code == 403
    unreachable = browser.client.get(f"{app.url}/smart/launch",
                                     params={"iss": dead, "launch": "x"})
    assert unreachable.status_code == 502
    assert _rows(app) == 0


def test_the_rate_limit_refills_per_client_and_forgets_the_least_recent_clients() -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate_per_minute=6, max_clients=3, clock=clock)
    assert [limiter.allow("a") for _ in range(7)] == [0] * 6 + [10]  # one token per 10 s
    assert limiter.allow("b") == 0  # another client has its own bucket
    clock.advance(9.0)
    assert limiter.allow("a") == 1
    clock.advance(1.0)
    assert limiter.allow("a") == 0 and limiter.allow("a") == 10
    for client in ("c", "d", "e"):
        limiter.allow(client)
    assert len(limiter) == 3  # "a" and "b" forgotten: the limiter itself is bounded


def test_the_pending_store_keeps_the_newest_launches_and_drops_expired_ones(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    engine = create_state_engine(f"sqlite:///{tmp_path / 'launches.db'}")
    store = PendingLaunches(engine, capacity=3, lifetime=900.0, clock=clock)
    cookies = []
    for i in range(5):
        clock.advance(1)
        cookies.append(store.create({"n": i}))
    assert store.count() == 3
    assert [store.get(c) for c in cookies] == [None, None, {"n": 2}, {"n": 3}, {"n": 4}]
    assert store.get("forged") is None
    clock.advance(900.0)
    assert store.get(cookies[-1]) is None  # expired
    store.create({"n": 5})
    assert store.count() == 1  # the expired rows went with the next insert
    engine.dispose()
