"""Errors of a legacy DIMSE source, each under the branch of :mod:`bridge.errors` that names
the action (HOUSE_STYLE principle 3).  pynetdicom's outcomes are translated into these in
one place, :mod:`bridge.migration.association`.

=====================  ===========  ==========================================================
error                  branch       when
=====================  ===========  ==========================================================
LegacyUnavailable      Outage       no TCP connection, no A-ASSOCIATE answer in time, or a
                                    *transient* rejection (PS3.8 9.3.4: result 2, e.g. the
                                    source is out of associations): wait it out, backoff
LegacyRefused          AuthError    a *permanent* rejection (PS3.8 9.3.4: result 1, e.g.
                                    called or calling AE title not recognised): the source
                                    refuses *us*; an administrator must fix the AE set-up,
                                    so no study is failed for it
LegacyAborted          Retryable    an established association aborted (A-ABORT or
                                    A-P-ABORT, PS3.8 7.3) or a DIMSE response not received in
                                    time: the attempt counts, so a request that makes the
                                    source abort every time ends as a failure, not a loop
LegacyQueryFailed      Permanent    a C-FIND answered with a Failure status (PS3.4 C.4.1.1.4,
                                    e.g. 0xA900 identifier does not match the SOP class,
                                    0xC000 unable to process); ``status`` holds it
LegacyRetrieveFailed   Permanent    a C-GET answered a Failure status (PS3.4 C.4.3.1.4) and
                                    sent nothing; failed *sub-operations* are not errors but
                                    listed in the retrieval's result
LegacyResultCapped     Permanent    a query that cannot be split reached the source's
                                    result cap: one day holds more studies, or one study
                                    more series or one series more instances, than the
                                    source returns for one C-FIND
SourceClosed           Waiting      the source is outside its time windows: the study waits
                                    until the next one opens (``retry_after``), not counted
StudyNotAtSource       Permanent    the source lists no instance of a queued study
StudyIncomplete        Permanent    after the transfer and one retry of the missing
                                    instances the archive still lacks some (or holds
                                    others): the message names them (:func:`missing_in`)
=====================  ===========  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.errors import AuthError, Outage, Permanent, Retryable, Waiting

__all__ = [
    "MISSING",
    "LegacyAborted",
    "LegacyQueryFailed",
    "LegacyRefused",
    "LegacyResultCapped",
    "LegacyRetrieveFailed",
    "LegacyUnavailable",
    "SourceClosed",
    "StudyIncomplete",
    "StudyNotAtSource",
    "missing_in",
]


class LegacyUnavailable(Outage):
    """The legacy source did not answer, or said it is busy (transient rejection)."""

    kind = "legacy-unavailable"


class LegacyRefused(AuthError):
    """The legacy source permanently rejected our association (PS3.8 9.3.4); the message
    gives the rejection's source and reason, e.g. "called AE title not recognised"."""

    kind = "legacy-refused"

    def __init__(self, message: str, *, reason: int | None = None) -> None:
        super().__init__(message)
        #: the A-ASSOCIATE-RJ reason/diag. value (PS3.8 9.3.4), if the source sent one
        self.reason = reason


class LegacyAborted(Retryable):
    """An established association with the legacy source was aborted, or a response did
    not arrive within ``dimse_timeout``."""

    kind = "legacy-aborted"


class LegacyQueryFailed(Permanent):
    """A C-FIND ended with a Failure status; the message names it in hex."""

    kind = "legacy-query-failed"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        #: the DIMSE Status (0000,0900) the source answered
        self.status = status


class LegacyResultCapped(Permanent):
    """A query that cannot be split further (one day; a study's series; a series'
    instances) reached the source's result cap: raise the cap at the source."""

    kind = "legacy-result-capped"


class LegacyRetrieveFailed(Permanent):
    """A C-GET ended with a Failure status and no instance; the message names it in hex."""

    kind = "legacy-retrieve-failed"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        #: the DIMSE Status (0000,0900) the source answered
        self.status = status


class SourceClosed(Waiting):
    """The source may not be read now (outside its ``time_windows``); nothing is wrong
    with the study, it waits ``retry_after`` seconds for the next window."""

    kind = "legacy-closed"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        #: seconds until the source's next time window opens
        self.retry_after = retry_after


class StudyNotAtSource(Permanent):
    """A queued study has no instance at the source (deleted there since the inventory)."""

    kind = "legacy-study-absent"


#: what precedes the SOP Instance UIDs in a :class:`StudyIncomplete` message
MISSING = "missing instances:"
EXTRA = "extra instances:"


class StudyIncomplete(Permanent):
    """The archive's instances of the study differ from the source's after the transfer
    and one retry; ``missing`` (at the source only) and ``extra`` (at the archive only)
    name them, and so does the message (the task queue keeps only the message)."""

    kind = "migration-incomplete"

    def __init__(self, study_uid: str, *, missing: Sequence[str], extra: Sequence[str] = (),
                 reasons: str = "") -> None:
        text = f"study {study_uid} differs in the archive after one retry"
        if reasons:
            text += f" ({reasons})"
        if extra:
            text += f"; {EXTRA} {' '.join(extra)}"
        if missing:
            text += f"; {MISSING} {' '.join(missing)}"
        super().__init__(text)
        self.missing = tuple(missing)
        self.extra = tuple(extra)


def missing_in(error: str | None) -> list[str]:
    """The SOP Instance UIDs a :class:`StudyIncomplete` message names as missing (last in
    the message, so a message cut at the queue's length limit loses only some)."""
    if not error or MISSING not in error:
        return []
    return [uid for uid in error.split(MISSING, 1)[1].split() if uid.replace(".", "").isdigit()]
