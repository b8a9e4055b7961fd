"""One exception tree for the whole product, classified by the action each error calls for.

Only the sync runner decides what to do with an error: a :class:`Retryable` error puts the
study back in the queue with backoff, a :class:`Permanent` error records a failure and moves
on.  Foreign exceptions (httpx, pydicom, SQLAlchemy) are translated at the boundary with
``raise X(...) from exc`` so the cause is kept but callers only ever see this tree.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    #: short, stable machine-readable kind used in metrics, failures and logs
    kind: str = "bridge-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- retryable: try again later, the same input may succeed -------------------------------


class Retryable(BridgeError):
    """The operation may succeed later without any change to the input."""

    kind = "retryable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: seconds the remote asked us to wait (HTTP Retry-After), if it said
        self.retry_after = retry_after


class ArchiveUnavailable(Retryable):
    """The DICOMweb archive did not answer, or answered 5xx/429."""

    kind = "archive-unavailable"


class FhirBusy(Retryable):
    """The FHIR server did not answer, or answered 5xx/429."""

    kind = "fhir-unavailable"


class Conflict(Retryable):
    """A concurrent change was detected (HTTP 409/412); re-read and retry."""

    kind = "conflict"


class PatientNotFound(Retryable):
    """Patient policy ``match`` found no Patient yet; the EHR may register it later."""

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
    """Settings are invalid or unsafe; raised at start-up."""

    kind = "config"


class AuthError(Permanent):
    """Authentication or authorization failed; the message says what the server answered."""

    kind = "auth"


class RequestTooLarge(Permanent):
    """An inbound request body is over the route's limit: 413 (RFC 9110 15.5.14)."""

    kind = "too-large"
    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over the limit of {limit} bytes")
        self.limit = limit
