"""What becomes of a study whose sync attempt raised: one ``match`` on the error's branch.

The branches of :mod:`bridge.errors` are the action (HOUSE_STYLE principle 3), so this is
the only place that turns an error into an outcome, and it reads nothing but the branch,
the attempts so far and the sync settings:

===================  ==========================================  =====================
error                outcome                                     recorded as
===================  ==========================================  =====================
PatientNotFound      again after ``patient_retry_interval``      ``waiting``
Outage               again after backoff (Retry-After a floor),  ``due``
                     however often it was tried
AuthError            again after backoff capped at attempt 6,    ``waiting``
                     however often it was tried
Retryable            again after backoff (Retry-After a floor)   ``due``
                     while ``attempts < max_attempts``, then
                     failed
Permanent            failed: dead letter with the reason         ``failed``
===================  ==========================================  =====================

``waiting`` rows are not counted as outstanding work (a drain does not wait for them); an
outage keeps its studies ``due`` so a drain waits it out, as a HAPI restart needs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bridge.config import SyncSettings
from bridge.errors import BridgeError, Outage, PatientNotFound, Retryable, Waiting
from bridge.sync.backoff import retry_delay

#: an auth outage waits for an administrator: its backoff stops growing at this attempt
AUTH_BACKOFF_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class Defer:
    """Try the study again in ``delay`` seconds; ``parked``: record it ``waiting``."""

    delay: float
    parked: bool


@dataclass(frozen=True, slots=True)
class Fail:
    """Record the failure (dead letter) and move on."""


def decide(exc: BridgeError, *, attempts: int, sync: SyncSettings,
           rng: random.Random | None = None) -> Defer | Fail:
    """The outcome of a failed attempt, the ``attempts``-th of the study so far."""
    base, cap = sync.backoff_base, sync.backoff_max
    match exc:
        case PatientNotFound():
            return Defer(sync.patient_retry_interval, parked=True)
        case Outage():
            return Defer(retry_delay(attempts, base=base, cap=cap, retry_after=exc.retry_after,
                                     rng=rng), parked=False)
        case Waiting():
            return Defer(retry_delay(min(attempts, AUTH_BACKOFF_ATTEMPTS), base=base, cap=cap,
                                     rng=rng), parked=True)
        case Retryable() if attempts < sync.max_attempts:
            return Defer(retry_delay(attempts, base=base, cap=cap, retry_after=exc.retry_after,
                                     rng=rng), parked=False)
        case _:
            return Fail()
