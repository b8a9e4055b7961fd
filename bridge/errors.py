"""One exception tree for the whole product; its three branches are the action to take.

Foreign exceptions (httpx, pydicom, SQLAlchemy, aiohttp) are translated at the boundary with
``raise X(...) from exc``, so the cause is kept but callers only ever see this tree
(HOUSE_STYLE principle 3).  Every exception class of ``bridge`` and ``smart_app`` is a
:class:`BridgeError` under exactly one branch (``tests/unit/test_error_tree.py``):

============  ==============================================  =================================
branch        action                                          examples
============  ==============================================  =================================
Retryable     back off (Retry-After a floor) and try again;   Conflict (409/412),
              the sync counts the attempt and records a       StateUnavailable
              failure after ``sync.max_attempts``
Waiting       not the study's fault: retry on a schedule      Outage: ArchiveUnavailable,
              however often it was tried, never a failure.    FhirBusy,
              An :class:`Outage` (a server down or busy)      TokenServiceUnavailable (503 +
              keeps the study due with backoff, honouring     Retry-After to a client);
              Retry-After; :class:`AuthError` (a server       AuthError (our credentials
              refuses *our* credentials) and                  refused); PatientNotFound
              :class:`PatientNotFound` park it ``waiting``
Permanent     the same input fails again: record the          DicomDataError, StudyGone,
              failure and move on (the sync dead-letters      FhirRejected, ArchiveRejected,
              the study; an HTTP handler answers the          ConfigError, MappingConfigError;
              error's ``http_status``)                        a client's bad request:
                                                              InvalidToken, Forbidden,
                                                              BadRequest, RequestTooLarge,
                                                              SignatureError, MultipartError,
                                                              LaunchError
============  ==============================================  =================================

Only the sync runner decides what to do with a study's error (``bridge.sync.settle``, one
``match`` on the branch).  An error that reaches an HTTP client carries the status it is
answered with as ``http_status`` (``None``: not meant for a client, a handler answers 502
when an upstream error escapes; ``status_code`` on :class:`ArchiveRejected` and
:class:`FhirRejected` is what the *remote* answered us, not ours).
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    #: short, stable machine-readable kind used in metrics, failures and logs
    kind: str = "bridge-error"
    #: the HTTP status a handler answers with when this error reaches a client
    http_status: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- retryable: back off and try again; the attempt counts ----------------------------------


class Retryable(BridgeError):
    """The operation may succeed later without any change to the input; each attempt counts
    (the sync gives up after ``sync.max_attempts``)."""

    kind = "retryable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: seconds the remote asked us to wait (HTTP Retry-After), if it said
        self.retry_after = retry_after


class Conflict(Retryable):
    """A concurrent change was detected (HTTP 409/412); re-read and retry."""

    kind = "conflict"


# --- waiting: not the study's fault; retried on a schedule, never a failure ----------------


class Waiting(BridgeError):
    """Nothing is wrong with the input: a server is down, refuses our credentials, or does
    not know the patient yet.  Retried however often it was tried, never dead-lettered
    ("deployed but syncing nothing" must show as one auth error, not 10,000 failed studies;
    a HAPI restart takes minutes and must not fail every study in flight)."""

    kind = "waiting"


class Outage(Waiting):
    """A server did not answer, or answered that it is down or busy (5xx, 429): back off,
    honouring its Retry-After (RFC 9110 10.2.3); a client is answered 503 with one."""

    kind = "outage"
    http_status = 503

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: seconds the remote asked us to wait (HTTP Retry-After), if it said
        self.retry_after = retry_after


class ArchiveUnavailable(Outage):
    """The DICOMweb archive did not answer, or answered 5xx/429."""

    kind = "archive-unavailable"


class FhirBusy(Outage):
    """The FHIR server did not answer, or answered 5xx/429."""

    kind = "fhir-unavailable"


class AuthError(Waiting):
    """A server refuses the bridge's own credentials (or they cannot be obtained); the
    message says what the server answered.  Waits for an administrator, not for the study:
    the sync parks the study ``waiting`` and tries again on a capped backoff.  A *client's*
    bad token is not this but a Permanent refusal (``bridge.gateway.errors.InvalidToken``)."""

    kind = "auth"


class PatientNotFound(Waiting):
    """Patient policy ``match`` found no Patient yet; the EHR may register it later (the
    study is parked ``waiting`` and looked at again after ``sync.patient_retry_interval``)."""

    kind = "patient-not-found"


# --- permanent: retrying the same input will fail again ------------------------------------


class Permanent(BridgeError):
    """Retrying with the same input will fail again; record the failure and move on."""

    kind = "permanent"


class DicomDataError(Permanent):
    """The study's DICOM data cannot be mapped (for example a missing required UID).

    ``tag`` names the offending attribute as ``(gggg,eeee) Keyword``.
    """

    kind = "dicom-data"

    def __init__(self, message: str, *, tag: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag


class ArchiveRejected(Permanent):
    """The archive refused a request with a 4xx (other than 404 on a study, see StudyGone)."""

    kind = "archive-rejected"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class StudyGone(Permanent):
    """The study no longer exists in the archive (404 / empty QIDO); the delete policy applies."""

    kind = "study-gone"


class FhirRejected(Permanent):
    """The FHIR server refused a request with a 4xx and (usually) an OperationOutcome."""

    kind = "fhir-rejected"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        operation_outcome: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.operation_outcome = operation_outcome


class MappingConfigError(Permanent):
    """A mappings/*.yaml file is invalid; the message names file, line and key."""

    kind = "mapping-config"


class ConfigError(Permanent):
    """Settings are invalid or unsafe (raised at start-up), or a queued study names an
    archive that is no longer configured."""

    kind = "config"


class RequestTooLarge(Permanent):
    """An inbound request body is over the route's limit: 413 (RFC 9110 15.5.14)."""

    kind = "too-large"
    http_status: int = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over the limit of {limit} bytes")
        self.limit = limit
