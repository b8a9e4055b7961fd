"""Blocking DIMSE exchanges with a legacy source (pynetdicom), and the one place where
pynetdicom's outcomes become the errors of :mod:`bridge.migration.errors`.

Each call opens its own association (PS3.8 7.1), does one exchange and releases it, so a
crashed exchange leaves nothing half-open behind; :class:`~bridge.migration.client.LegacySource`
runs these in threads and bounds how many run at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.pdu import A_ASSOCIATE_RJ

from bridge.migration.errors import (
    LegacyAborted,
    LegacyQueryFailed,
    LegacyRefused,
    LegacyUnavailable,
)
from bridge.sections.migration import LegacySourceSettings

__all__ = ["FindAnswer", "echo", "find"]

log = logging.getLogger(__name__)

#: SOP classes (PS3.4 A.4 Verification, C.6.2.1 Study Root Query/Retrieve - FIND)
VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

#: A-ASSOCIATE-RJ Result (PS3.8 9.3.4): 1 rejected-permanent, 2 rejected-transient
REJECTED_PERMANENT = 1

# C-FIND statuses (PS3.4 C.4.1.1.4)
SUCCESS = 0x0000
PENDING = (0xFF00, 0xFF01)
#: "Matching terminated due to Cancel request": a source that stops at its result cap
#: answers this after the matches it did send (Orthanc's LimitFindResults does)
CANCELLED = 0xFE00


@dataclass(frozen=True, slots=True)
class FindAnswer:
    """The identifiers a C-FIND returned, and whether the source cut the list short
    (it answered Cancel, or returned as many as its declared ``max_results``)."""

    identifiers: list[Dataset]
    capped: bool


def _where(source: LegacySourceSettings) -> str:
    return f"legacy source {source.name!r} ({source.ae_title}@{source.host}:{source.port})"


def _associate(source: LegacySourceSettings, abstract_syntax: str, *,
               scp_roles: Sequence[tuple[str, Sequence[str]]] = (),
               handlers: Sequence[tuple[Any, Any]] = ()) -> Association:
    """An association proposing ``abstract_syntax``, and each SOP class of ``scp_roles``
    (with its transfer syntaxes) in the SCP role (PS3.7 D.3.3.4), e.g. the storage
    classes a C-GET's sub-operations need (PS3.4 C.4.3)."""
    ae = AE(ae_title=source.calling_ae_title)
    ae.connection_timeout = source.connect_timeout
    ae.acse_timeout = source.connect_timeout
    ae.dimse_timeout = source.dimse_timeout
    ae.network_timeout = source.dimse_timeout
    ae.add_requested_context(abstract_syntax)
    roles: list[Any] = []
    for sop_class, transfer_syntaxes in scp_roles:
        ae.add_requested_context(sop_class, list(transfer_syntaxes))
        roles.append(build_role(sop_class, scp_role=True))
    rejections: list[A_ASSOCIATE_RJ] = []

    def on_pdu(event: Event) -> None:
        # the PDU as it arrives, not the ACSE primitive: see the race below
        pdu = getattr(event, "pdu", None)
        if isinstance(pdu, A_ASSOCIATE_RJ):
            rejections.append(pdu)

    assoc = ae.associate(source.host, source.port, ae_title=source.ae_title,
                         ext_neg=roles or None,
                         evt_handlers=[(evt.EVT_PDU_RECV, on_pdu), *handlers])
    if assoc.is_established:
        return assoc
    where = _where(source)
    # A peer that sends A-ASSOCIATE-RJ and closes the connection at once (dcmqrscp does)
    # races pynetdicom 3.0: the closed transport can be handled before the rejection reaches
    # the ACSE (no EVT_ACSE_RECV), and the association then reads as aborted (22 to 36 of
    # 60 tries against dcmqrscp 3.6.7).  The A-ASSOCIATE-RJ PDU we received (PS3.8 9.3.4)
    # is the answer, whatever pynetdicom's state.
    if assoc.is_rejected or rejections:
        rj = rejections[0] if rejections else None
        why = f"{rj.source_str}: {rj.reason_str}" if rj else "no reason given"
        if rj is not None and rj.result == REJECTED_PERMANENT:
            raise LegacyRefused(
                f"{where} rejected our association as {source.calling_ae_title} "
                f"permanently ({why}); check both AE titles at the source",
                reason=rj.reason_diagnostic)
        raise LegacyUnavailable(f"{where} rejected our association for now ({why})")
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        raise LegacyRefused(f"{where} does not accept the SOP class {abstract_syntax}")
    raise LegacyUnavailable(f"{where} did not answer an association request")


def _release(assoc: Association) -> None:
    if assoc.is_established:
        assoc.release()


def echo(source: LegacySourceSettings) -> None:
    """C-ECHO (PS3.7 9.1.5): the source answers Success, or an error is raised."""
    assoc = _associate(source, VERIFICATION)
    try:
        status = assoc.send_c_echo()
        if "Status" not in status:
            raise LegacyAborted(f"{_where(source)} aborted or did not answer a C-ECHO")
        if status.Status != SUCCESS:
            raise LegacyQueryFailed(
                f"{_where(source)} answered a C-ECHO with status 0x{status.Status:04X}",
                status=int(status.Status))
    finally:
        _release(assoc)


def find(source: LegacySourceSettings, query: Dataset) -> FindAnswer:
    """C-FIND of Study Root Query/Retrieve (PS3.4 C.6.2.1) with the identifier ``query``."""
    assoc = _associate(source, STUDY_ROOT_FIND)
    found: list[Dataset] = []
    capped = False
    try:
        responses = assoc.send_c_find(query, STUDY_ROOT_FIND)
        for status, identifier in responses:
            if "Status" not in status:
                raise LegacyAborted(
                    f"{_where(source)} aborted or did not answer a C-FIND at "
                    f"{query.QueryRetrieveLevel} level after {len(found)} matches")
            code = int(status.Status)
            if code in PENDING:
                if identifier is not None:
                    found.append(identifier)
            elif code == CANCELLED:
                capped = True
            elif code != SUCCESS:
                comment = status.get("ErrorComment")
                raise LegacyQueryFailed(
                    f"{_where(source)} answered a C-FIND at {query.QueryRetrieveLevel} level "
                    f"with failure status 0x{code:04X}" + (f" ({comment})" if comment else ""),
                    status=code)
    finally:
        _release(assoc)
    if source.max_results is not None and len(found) >= source.max_results:
        capped = True
    log.debug("legacy C-FIND answered", extra={
        "source": source.name, "level": str(query.QueryRetrieveLevel),
        "matches": len(found), "capped": capped})
    return FindAnswer(found, capped)

