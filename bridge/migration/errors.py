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
=====================  ===========  ==========================================================
"""

from __future__ import annotations

from bridge.errors import AuthError, Outage, Permanent, Retryable

__all__ = [
    "LegacyAborted",
    "LegacyQueryFailed",
    "LegacyRefused",
    "LegacyResultCapped",
    "LegacyRetrieveFailed",
    "LegacyUnavailable",
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
