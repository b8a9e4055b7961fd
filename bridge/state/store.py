"""The state store: the sync engine's durable work queue (issue 4, "State store").

One row per (archive, study); its ``status`` (``Status``) changes like this:

=================  =============================================================
``mark_due``       any status but leased -> ``due``, at the earliest pending due
                   time; a ``leased`` row stays leased (its ``due_seq`` is bumped);
                   lane: the reason's, but a queued real-time row stays real-time
``claim``          ``due``/``waiting`` whose time has come, or ``leased`` whose
                   lease expired -> ``leased`` (attempts + 1, claimed_seq = due_seq);
                   real-time lane first, ``bulk_share`` of the batch to bulk
``complete``       ``leased`` -> ``synced``, or ``due`` if an event came meanwhile
``retry_later``    ``leased`` -> ``due`` or ``waiting``, after a delay (backoff)
``fail``           ``leased`` -> ``failed`` (dead letter), or ``due`` as above
``retry_failed``   ``failed`` -> ``due``
``mark_deleted``   any -> ``deleted`` (the study left the archive)
=================  =============================================================

Rules that make the queue lose nothing:

* Events coalesce: one row per (archive, study), whatever the number of events.
* Every ``mark_due`` bumps ``due_seq``; ``claim`` copies it to ``claimed_seq``.  An event
  arriving while a worker holds the lease leaves the row leased, but the worker's
  ``complete``/``fail`` then sees ``due_seq != claimed_seq`` and makes the row due again
  instead of synced/failed.
* Only the lease holder (``lease_owner`` and ``claimed_seq`` match) can record an outcome;
  once a lease expires another worker may claim the row and the late one gets ``False``.
* Claims are exclusive: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN
  IMMEDIATE`` (the single writer lock) on SQLite.
* ``ready_at``, the moment a row can next be claimed (due time, or lease expiry), is set
  exactly for due, waiting and leased rows; a claim is one index range scan over it per
  lane (``lane``, ``ready_at``).
* Lanes (issue 19): each row waits in the ``realtime`` or the ``bulk`` lane, decided by
  the reason of its marks (``LANE_OF_REASON``); one row per study still, so a real-time
  event for a study queued by a backfill moves that row to the real-time lane, and a bulk
  event never moves a queued row out of it.  Outcomes keep the lane (a retry stays in its
  lane).  While both lanes have ready rows a claim of ``limit`` rows gives ``limit *
  bulk_share`` of them (carried over between claims when fractional) to the bulk lane, so
  bulk work is never starved by a steady stream of real-time work.

The API is synchronous and thread-safe (one Engine and its pool, one connection and
transaction per call), for use from asyncio through ``asyncio.to_thread``.
"""

from __future__ import annotations

from bridge.state.base import DEFAULT_BULK_SHARE, Clock, translated, utcnow
from bridge.state.engine import create_state_engine
from bridge.state.mapping_warnings import WarningOps
from bridge.state.migrate import upgrade
from bridge.state.outcomes import OutcomeOps
from bridge.state.queue import QueueOps
from bridge.state.reports import ReportOps
from bridge.state.signatures import SignatureOps
from bridge.state.tasks import TaskOps
from bridge.state.worklist_ops import WorklistOps


def open_store(
    url: str,
    *,
    clock: Clock = utcnow,
    busy_timeout: float = 30.0,
    bulk_share: float = DEFAULT_BULK_SHARE,
) -> StateStore:
    """Open (and create or upgrade to the latest schema) the state store at ``url``.

    ``url`` is ``sqlite:///path/state.db`` or ``postgresql+psycopg://user:pw@host/db``.
    The schema is brought to the head alembic revision under a lock, so several processes
    may open the same store at once.  ``clock`` returns the current aware UTC time (tests
    inject a fake one); ``busy_timeout`` is how long a SQLite writer waits for the lock;
    ``bulk_share`` (0..1) is the share of each claim kept for bulk work while real-time
    work waits.
    """
    if not 0 <= bulk_share <= 1:
        raise ValueError(f"bulk_share must be between 0 and 1, got {bulk_share}")
    engine = create_state_engine(url, busy_timeout=busy_timeout)
    try:
        with translated():
            upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return StateStore(engine, clock=clock, bulk_share=bulk_share)


class StateStore(QueueOps, OutcomeOps, ReportOps, SignatureOps, WarningOps, TaskOps,
                 WorklistOps):
    """Durable work queue, failures, checkpoints and audit of the sync engine.

    Create it with :func:`open_store`.  Every method is one short transaction; all
    datetimes are timezone-aware UTC; results are frozen dataclasses, never ORM objects.
    The methods live in ``queue.py`` (mark_due, claim, ...), ``outcomes.py`` (complete,
    retry_later, fail, ...), ``reports.py`` (get_study, failures, counts, checkpoints),
    ``signatures.py`` (remember_signature: replay memory of signed notifications) and
    ``mapping_warnings.py`` (warnings of each study's latest mapping, by study and code).
    """
