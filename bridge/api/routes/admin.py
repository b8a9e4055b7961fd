"""Operations endpoints: liveness, readiness, status, per-study history, metrics.

:data:`health_router` (``/healthz``, ``/readyz``) stays open for probes, on every
listener; :data:`router` (``/status``, ``/studies/{uid}``, ``/metrics``) is the admin API:
the app factory puts it behind :func:`bridge.api.admin_auth.admin_guard`, on the admin
listener when there is one (issue 12 item 6).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.auth.health import AUTH_HEALTH
from bridge.errors import BridgeError
from bridge.metrics import record_lanes
from bridge.realtime.context import RealtimeContext
from bridge.realtime.status import realtime_status
from bridge.sync.service import SyncContext, capability_needs, check_fhir_capabilities

health_router = APIRouter()
router = APIRouter()


def _ctx(request: Request) -> SyncContext:
    # a separate admin listener may answer before the public one has started the service
    ctx: SyncContext | None = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise HTTPException(status_code=503, detail="the service is starting",
                            headers={"Retry-After": "1"})
    return ctx


Ctx = Annotated[SyncContext, Depends(_ctx)]


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@health_router.get("/readyz")
async def readyz(ctx: Ctx, request: Request) -> JSONResponse:
    """Readiness: every archive and the FHIR server answer (auth included), and the checks
    other parts registered in ``app.state.readiness_checks`` (name -> async callable)."""
    checks: dict[str, str] = {}

    async def check(name: str, coro: Any) -> None:
        try:
            await coro
            checks[name] = "ok"
        except BridgeError as exc:
            checks[name] = f"{exc.kind}: {exc.message}"

    await asyncio.gather(
        # what the sync relies on, read from the CapabilityStatement (issue 20 item 8a)
        check("fhir", check_fhir_capabilities(ctx.fhir, capability_needs(ctx))),
        *(check(f"archive:{n}", a.ping()) for n, a in ctx.archives.items()),
        *(check(name, probe())
          for name, probe in getattr(request.app.state, "readiness_checks", {}).items()),
    )
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/status")
async def status(ctx: Ctx, request: Request) -> dict[str, Any]:
    """Counts per state, queue depth, lag, the queue's lanes and bulk share, studies mapped
    with warnings, the last poll and, when an event source is configured, what the
    real-time sources did (``realtime``)."""
    counts = await asyncio.to_thread(ctx.store.counts)
    warned = await asyncio.to_thread(ctx.store.warned_study_count)
    depth = await asyncio.to_thread(ctx.store.queue_depth)
    lag = await asyncio.to_thread(ctx.store.oldest_due_age)
    lanes = await asyncio.to_thread(ctx.store.lanes)
    poller = ctx.poller
    body: dict[str, Any] = {
        "studies": counts,
        "queue_depth": depth,
        # how far behind the sync is now: the oldest ready study's wait, 0 when none waits
        # (null read as "unknown" to operators and alerting; issue 20 item 10)
        "lag_seconds": round(lag, 3) if lag is not None else 0.0,
        # the work queue's lanes (issue 19): real-time work is claimed first, but bulk work
        # keeps bulk_share of each claim while both wait; waits as lag_seconds (0 when none)
        "lanes": {
            f.lane.value: {"depth": f.depth, "oldest_age_seconds": round(f.oldest_age or 0.0, 3)}
            for f in lanes
        },
        "bulk_share": ctx.store.bulk_share,
        # studies whose latest mapping had warnings (`imaging-bridge warnings list`)
        "studies_with_warnings": warned,
        "last_poll": poller.last_poll.isoformat() if poller.last_poll else None,
        "last_poll_results": [
            {"archive": r.archive, "seen": r.seen, "due": r.due, "requests": r.requests}
            for r in poller.last_results
        ],
        # the outbound auth's last unresolved failure (what the token endpoint answered)
        "last_auth_error": _last_auth_error(),
        "this_process": {
            "synced": ctx.stats.synced, "unchanged": ctx.stats.unchanged,
            "retried": ctx.stats.retried, "failed": ctx.stats.failed,
        },
    }
    rt: RealtimeContext | None = getattr(request.app.state, "realtime", None)
    section = await realtime_status(rt) if rt is not None else None
    if section is not None:
        body["realtime"] = section
    # the rooms that report a status (the worklist: its list's age, last poll error, counts)
    rooms = {room.name: room.status() for room in getattr(request.app.state, "rooms", ())
             if callable(getattr(room, "status", None))}
    if rooms:
        body["rooms"] = rooms
    return body


def _last_auth_error() -> dict[str, Any] | None:
    failure = AUTH_HEALTH.last_failure()
    return failure.as_dict() if failure else None


@router.get("/studies/{study_uid}")
async def study(study_uid: str, ctx: Ctx) -> dict[str, Any]:
    """The study's sync state, history (audit and failures) and the warnings of its latest
    mapping (code, tag, series, message; a value only when it is a vocabulary term), for
    every archive."""
    views = []
    for name in ctx.archives:
        view = await asyncio.to_thread(ctx.store.get_study, name, study_uid)
        if view is not None:
            views.append(view)
    if not views:
        raise HTTPException(status_code=404, detail=f"study {study_uid} is not known")
    history = await asyncio.to_thread(ctx.store.study_history, study_uid)
    warnings = await asyncio.to_thread(ctx.store.study_warnings, study_uid)
    from dataclasses import asdict

    return {"states": [asdict(v) for v in views],
            "history": [asdict(h) if hasattr(h, "__dataclass_fields__") else h for h in history],
            "warnings": [asdict(w) for w in warnings]}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    ctx: SyncContext | None = getattr(request.app.state, "ctx", None)
    if ctx is not None:  # a separate admin listener may answer before the service starts
        await asyncio.to_thread(record_lanes, ctx.store)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
