"""The worklist's errors, each under the branch of :mod:`bridge.errors` that says what to do.

A bad order or a bad query fails the same way every time, so both are
:class:`~bridge.errors.Permanent`: an order is listed with the reason and kept off the
worklist; a query is answered with a DIMSE failure status (PS3.4 C.4.1.1.4), never a crash.
An invalid mappings/worklist.yaml is a :class:`~bridge.errors.MappingConfigError`.
"""

from __future__ import annotations

from bridge.errors import Permanent


class OrderDataError(Permanent):
    """A ServiceRequest (or its Patient) cannot become a worklist item.

    ``field`` names the FHIR element at fault, e.g. ``ServiceRequest.subject``.
    """

    kind = "order-data"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnmappableStation(OrderDataError):
    """No row of the station table matches the order's performerType / locationCode."""

    kind = "order-station"


class QueryError(Permanent):
    """A C-FIND identifier the worklist cannot evaluate (a malformed date/time range, an
    unsupported key).  ``keyword`` names the attribute; ``status`` is the DIMSE failure
    status to answer (PS3.4 C.4.1.1.4: 0xA900 identifier does not match the SOP class,
    0xC000-0xCFFF unable to process)."""

    kind = "worklist-query"

    def __init__(self, message: str, *, keyword: str, status: int) -> None:
        super().__init__(f"{keyword}: {message}")
        self.keyword = keyword
        self.status = status
