"""SQL statements of the work queue that are more than a one-liner.

Built once per dialect and reused (executemany where natural).  The state machine they
implement is described in ``store.py``; every status literal bound here is a plain ``str``
(``Status.X.value``) so no driver has to guess how to adapt an Enum.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    Update,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from bridge.state.enums import Lane, Status
from bridge.state.models import CHECKPOINT, STUDY
from bridge.state.sqltypes import UTCDateTime

DUE = Status.DUE.value
LEASED = Status.LEASED.value
SYNCED = Status.SYNCED.value
WAITING = Status.WAITING.value
FAILED = Status.FAILED.value
DELETED = Status.DELETED.value
#: statuses whose rows still need work; exactly the rows with a non-NULL ready_at
OPEN = (DUE, WAITING, LEASED)
REALTIME = Lane.REALTIME.value
BULK = Lane.BULK.value


def _insert(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def mark_due(dialect: str) -> Any:
    """Upsert marking one study due.

    Parameters: archive, study_uid, status (='due'), reason, lane (the reason's),
    fingerprint, attempts (=0), next_attempt_at, ready_at (both = the event's due time),
    due_seq (=1), claimed_seq (=0), first_seen_at, updated_at.  What happens to an existing row is
    :func:`_coalesce_due`.
    """
    return _coalesce_due(_insert(dialect, STUDY))


def mark_many_due(dialect: str) -> Any:
    """Upsert marking many studies of one archive due in ONE statement.

    The studies arrive as one parameter instead of one parameter set per row, so the
    cost per row is the database's, not the driver's: a JSON array of ``[uid,
    fingerprint]`` pairs read with ``json_each`` on SQLite (parameter ``payload``), two
    arrays read with ``unnest`` on PostgreSQL (parameters ``uids`` and ``fps``).  Other
    parameters: archive, reason, lane (the reason's), now.  UIDs must be distinct
    (PostgreSQL refuses to update one row twice in one statement).
    """
    now = bindparam("now", type_=UTCDateTime())
    if dialect == "postgresql":
        pairs = (
            func.unnest(
                bindparam("uids", type_=postgresql.ARRAY(String())),
                bindparam("fps", type_=postgresql.ARRAY(String())),
            )
            .table_valued("uid", "fp")
            .render_derived(name="src")
        )
        uid: ColumnElement[Any] = pairs.c.uid
        fingerprint: ColumnElement[Any] = pairs.c.fp
    else:
        pairs = func.json_each(_text("payload")).table_valued("value")
        uid = func.json_extract(pairs.c.value, "$[0]")
        fingerprint = func.json_extract(pairs.c.value, "$[1]")
    rows = (
        select(
            _text("archive"),
            uid,
            literal(DUE),
            _text("reason"),
            _text("lane"),
            fingerprint,
            literal(0),
            now,
            now,
            literal(1),
            literal(0),
            now,
            now,
        )
        .select_from(pairs)
        # SQLite needs a WHERE to tell "SELECT ... ON CONFLICT" from a join's ON
        .where(true())
    )
    columns = [
        "archive",
        "study_uid",
        "status",
        "reason",
        "lane",
        "fingerprint",
        "attempts",
        "next_attempt_at",
        "ready_at",
        "due_seq",
        "claimed_seq",
        "first_seen_at",
        "updated_at",
    ]
    return _coalesce_due(_insert(dialect, STUDY).from_select(columns, rows))


def _coalesce_due(ins: Any) -> Any:
    """Add to a ``bridge_study`` insert what to do when the study already has a row.

    Issue 4: "many events for one study coalesce into one due row".  ``due_seq`` is
    bumped; a leased row stays leased (its worker's completion will then see ``due_seq
    != claimed_seq`` and make it due again, at the earliest due time recorded in
    ``next_attempt_at`` meanwhile); a due or waiting row becomes due at the earlier of its
    current and the new due time; a synced, failed or deleted row becomes due afresh with
    ``attempts`` reset.  A ``NULL`` fingerprint keeps the stored one.

    Lanes (issue 19): a queued row (due, waiting or leased) already in the real-time lane
    stays there whatever the new event's lane, so a bulk mark never demotes it; any other
    row takes the new event's lane, so a real-time event moves a queued bulk row to the
    real-time lane (keeping its earlier due time: it has waited longest) and a finished row
    is queued afresh in the event's lane.
    """
    s, new = STUDY.c, ins.excluded
    # OR of equalities rather than an "expanding" IN: the SQL is compiled once and cached
    queued = or_(*(s.status == status for status in OPEN))
    earliest = case(
        (
            and_(queued, s.next_attempt_at.is_not(None), s.next_attempt_at < new.next_attempt_at),
            s.next_attempt_at,
        ),
        else_=new.next_attempt_at,
    )
    leased = s.status == LEASED
    return ins.on_conflict_do_update(
        index_elements=[s.archive, s.study_uid],
        set_={
            "status": case((leased, s.status), else_=new.status),
            "reason": new.reason,
            "lane": case((and_(queued, s.lane == REALTIME), s.lane), else_=new.lane),
            "fingerprint": func.coalesce(new.fingerprint, s.fingerprint),
            "attempts": case((queued, s.attempts), else_=new.attempts),
            "next_attempt_at": earliest,
            "ready_at": case((leased, s.ready_at), else_=earliest),
            "due_seq": s.due_seq + 1,
            "updated_at": new.updated_at,
        },
    )


def fingerprints(dialect: str) -> Any:
    """Select (study_uid, fingerprint) of the listed studies of one archive.

    Parameters: archive, uids (a list).  SQLite: ``study_uid IN (...)``, which SQLite
    answers by primary-key lookups.  PostgreSQL: a join with ``unnest(:uids)``; a long
    ``IN`` list there can end up as a filter applied to every row of the archive (seen
    with a prepared generic plan and fresh statistics: 4 s for 10,000 UIDs).
    """
    s = STUDY.c
    if dialect == "postgresql":
        wanted = (
            func.unnest(bindparam("uids", type_=postgresql.ARRAY(String())))
            .table_valued("uid")
            .render_derived(name="wanted")
        )
        return (
            select(s.study_uid, s.fingerprint)
            .select_from(wanted)
            .join(STUDY, and_(s.archive == _text("archive"), s.study_uid == wanted.c.uid))
        )
    return select(s.study_uid, s.fingerprint).where(
        s.archive == _text("archive"), s.study_uid.in_(bindparam("uids", expanding=True))
    )


def claim_pick(dialect: str, *, by_archive: bool) -> Select[Any]:
    """The rows a claim takes from one lane: parameters k_lane, now, limit (and k_archive if
    ``by_archive``).

    ``ready_at`` is NULL exactly when a row is not claimable, so this range alone, read
    from ``ix_bridge_study_lane_ready_at`` (or ``ix_bridge_study_archive_lane_ready_at``)
    already in claim order, finds the lane's due and waiting rows whose time has come and
    its expired leases.  How many rows each lane gets is the caller's (``QueueOps.claim``).
    On PostgreSQL the rows are locked, and rows locked by a concurrent claim are skipped
    instead of waited for (``FOR UPDATE SKIP LOCKED``); on SQLite the claim's ``BEGIN
    IMMEDIATE`` already excludes every other writer.
    """
    s = STUDY.c
    pick = (
        select(s.archive, s.study_uid, s.status, s.ready_at)
        .where(s.lane == _text("k_lane"), s.ready_at <= bindparam("now", type_=UTCDateTime()))
        .order_by(s.ready_at)
        .limit(bindparam("limit", type_=Integer()))
    )
    if by_archive:
        pick = pick.where(s.archive == _text("k_archive"))
    if dialect == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    return pick


def claim_lease(dialect: str, *, by_archive: bool) -> Any:
    """Lease rows to a worker; parameters worker, expires, now and

    * PostgreSQL: those of :func:`claim_pick`, which is a subquery here, so the claim is
      one statement (``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)``) that finds
      the rows by primary key whatever the planner's statistics say; it also returns the
      status (``previous_status``) and ``ready_at`` (``picked_ready_at``) before the claim;
    * SQLite: keys, the (archive, uid) pairs :func:`claim_pick` returned (SQLite's
      RETURNING cannot name another table of an UPDATE ... FROM), and uids, their study
      UIDs (see :func:`_by_keys`).

    Returns the claimed rows' values for :class:`ClaimedStudy`.
    """
    s = STUDY.c
    expires = bindparam("expires", type_=UTCDateTime())
    returned: list[Any] = [
        s.archive,
        s.study_uid,
        s.claimed_seq,
        s.attempts,
        s.reason,
        s.lane,
        s.fingerprint,
        s.content_hash,
        s.fhir_id,
        s.fhir_version,
        s.lease_expires_at,
    ]
    lease = update(STUDY)
    if dialect == "postgresql":
        picked = claim_pick(dialect, by_archive=by_archive).subquery("picked")
        lease = lease.where(s.archive == picked.c.archive, s.study_uid == picked.c.study_uid)
        returned += [
            picked.c.status.label("previous_status"),
            picked.c.ready_at.label("picked_ready_at"),
        ]
    else:
        lease = lease.where(*_by_keys())
    return lease.values(
        status=LEASED,
        lease_owner=_text("worker"),
        lease_expires_at=expires,
        ready_at=expires,
        next_attempt_at=None,
        claimed_seq=s.due_seq,
        attempts=s.attempts + 1,
        updated_at=bindparam("now", type_=UTCDateTime()),
    ).returning(*returned)


def held(dialect: str) -> Select[Any]:
    """Rows among some studies that are leased to ``worker``.

    Parameters: worker and, on SQLite, keys (list of (archive, uid)) and uids (their study
    UIDs, see :func:`_by_keys`); on PostgreSQL archives and uids (two lists), joined
    through ``unnest`` so the rows are found by primary key even with no statistics yet,
    and locked until commit.
    """
    s = STUDY.c
    columns = [s.archive, s.study_uid, s.claimed_seq, s.due_seq, s.attempts, s.fhir_id]
    query = select(*columns, s.fhir_version).where(s.lease_owner == _text("worker"))
    if dialect == "postgresql":
        wanted = (
            func.unnest(
                bindparam("archives", type_=postgresql.ARRAY(String())),
                bindparam("uids", type_=postgresql.ARRAY(String())),
            )
            .table_valued("archive", "uid")
            .render_derived(name="wanted")
        )
        return (
            query.where(s.status == LEASED)
            .select_from(wanted)
            .join(STUDY, and_(s.archive == wanted.c.archive, s.study_uid == wanted.c.uid))
            .with_for_update(of=STUDY)
        )
    # "+status": SQLite's documented way to keep a term from choosing an index; without
    # statistics it would rather read every leased row through ix_bridge_study_status
    unindexed_status = literal_column(f"+{STUDY.name}.{s.status.name}", String())
    return query.where(unindexed_status == LEASED, *_by_keys())


def _by_keys() -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """SQLite: the rows of the (archive, uid) pairs ``keys`` whose UIDs are ``uids``.

    SQLite answers a row-value ``(archive, study_uid) IN (VALUES ...)`` by scanning the
    whole table (or, for leased rows, every leased row), so a claim or a batch of
    completions would read every study ever seen; ``study_uid IN (...)`` lets it find the
    rows through ``ix_bridge_study_study_uid``, and the pairs keep the archive exact.
    """
    s = STUDY.c
    return (
        s.study_uid.in_(bindparam("uids", expanding=True)),
        tuple_(s.archive, s.study_uid).in_(bindparam("keys", expanding=True)),
    )


def set_checkpoint(dialect: str) -> Any:
    """Upsert of one checkpoint; parameters name, value, updated_at."""
    ins = _insert(dialect, CHECKPOINT)
    return ins.on_conflict_do_update(
        index_elements=[CHECKPOINT.c.name],
        set_={"value": ins.excluded.value, "updated_at": ins.excluded.updated_at},
    )


def _text(name: str) -> BindParameter[str]:
    return bindparam(name, type_=String())


def complete() -> Update:
    """Record the confirmed outcome of a claim still held by its worker.

    Parameters: k_archive, k_uid, k_worker, k_claimed_seq (the guard: a lost lease
    matches no row), v_fingerprint, v_content_hash, v_fhir_id, v_fhir_version (``NULL``
    keeps the stored value), now.

    With no event since the claim (``due_seq = claimed_seq``) the row becomes synced.
    Otherwise it becomes due again, at the due time an event recorded during the lease
    (now if none did); the FHIR outcome is recorded, but not the fingerprint, as the
    event may have brought a newer one.
    """
    s = STUDY.c
    now = bindparam("now", type_=UTCDateTime())
    current = s.due_seq == s.claimed_seq
    due_again_at = case((current, null()), else_=func.coalesce(s.next_attempt_at, now))
    return (
        update(STUDY)
        .where(
            s.archive == _text("k_archive"),
            s.study_uid == _text("k_uid"),
            s.status == LEASED,
            s.lease_owner == _text("k_worker"),
            s.claimed_seq == bindparam("k_claimed_seq", type_=Integer()),
        )
        .values(
            status=case((current, SYNCED), else_=DUE),
            fingerprint=case(
                (current, func.coalesce(_text("v_fingerprint"), s.fingerprint)),
                else_=s.fingerprint,
            ),
            content_hash=func.coalesce(_text("v_content_hash"), s.content_hash),
            fhir_id=func.coalesce(_text("v_fhir_id"), s.fhir_id),
            fhir_version=func.coalesce(_text("v_fhir_version"), s.fhir_version),
            attempts=0,
            next_attempt_at=due_again_at,
            ready_at=due_again_at,
            last_error_kind=None,
            last_error=None,
            lease_owner=None,
            lease_expires_at=None,
            synced_at=now,
            updated_at=now,
        )
    )
