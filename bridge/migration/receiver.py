"""The bridge's own C-STORE SCP, the *move destination* of a C-MOVE "through the bridge"
(PS3.4 B.2, C.4.2): a legacy source moves a study's instances here, they are kept in the
study's spool directory as received (``Event.encoded_dataset``: nothing decoded), and the
migration step stores them in the archive by STOW-RS.

A C-STORE is accepted only for an instance a running move expects (:meth:`expect`, by SOP
Instance UID): instances nobody asked for are refused (0xC000 "cannot understand",
PS3.4 B.2.3), so the receiver cannot be used to put anything else into the archive.
pynetdicom serves each association in a thread of its own; the expectations are shared
under a lock.  Every storage SOP class of pynetdicom is accepted, in any transfer syntax
(a source holding JPEG sends it as it is; the archive receives it the same way).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event

from bridge.migration.retrieve import ReceivedInstance

__all__ = ["Inbox", "MoveReceiver"]

log = logging.getLogger(__name__)

SUCCESS = 0x0000
#: C-STORE "Error: Cannot understand" (PS3.4 B.2.3): an instance no move expects
NOT_EXPECTED = 0xC000
#: C-STORE "Refused: Out of Resources": the instance could not be written
OUT_OF_RESOURCES = 0xA700


@dataclass(slots=True)
class Inbox:
    """The instances one move expects, and those received so far."""

    folder: Path
    expected: frozenset[str]
    received: list[ReceivedInstance] = field(default_factory=list)


class MoveReceiver:
    """A C-STORE SCP serving ``ae_title`` on ``host:port`` (port 0: a free one, read back
    from :attr:`port` once started).  Use as a context manager."""

    def __init__(self, *, ae_title: str, host: str = "0.0.0.0", port: int = 0,
                 network_timeout: float = 60.0) -> None:
        self.ae_title = ae_title
        self.host = host
        self.port = port
        self._ae = AE(ae_title=ae_title)
        self._ae.network_timeout = network_timeout
        self._ae.dimse_timeout = network_timeout
        for context in StoragePresentationContexts:
            if context.abstract_syntax is not None:
                self._ae.add_supported_context(context.abstract_syntax,
                                               ALL_TRANSFER_SYNTAXES)
        self._lock = threading.Lock()
        self._inboxes: dict[str, Inbox] = {}
        self._server: Any = None

    def start(self) -> Self:
        self._server = self._ae.start_server((self.host, self.port), block=False,
                                             evt_handlers=[(evt.EVT_C_STORE, self._on_store)])
        self.port = int(self._server.server_address[1])
        log.info("migration move receiver listening", extra={
            "ae_title": self.ae_title, "port": self.port})
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def expect(self, sop_instance_uids: Iterable[str], folder: Path) -> Iterator[Inbox]:
        """Accept the instances ``sop_instance_uids`` into ``folder`` while the block
        runs (the C-MOVE that sends them)."""
        inbox = Inbox(folder, frozenset(sop_instance_uids))
        with self._lock:
            for uid in inbox.expected:
                self._inboxes[uid] = inbox
        try:
            yield inbox
        finally:
            with self._lock:
                for uid in inbox.expected:
                    if self._inboxes.get(uid) is inbox:
                        del self._inboxes[uid]

    def _on_store(self, event: Event) -> int:
        request = event.request
        assert isinstance(request, C_STORE)
        sop_uid = str(request.AffectedSOPInstanceUID)
        with self._lock:
            inbox = self._inboxes.get(sop_uid)
        if inbox is None:
            log.warning("move receiver refused an instance no move expects",
                        extra={"calling_ae": event.assoc.requestor.ae_title})
            return NOT_EXPECTED
        try:
            path = inbox.folder / f"{sop_uid}.dcm"
            path.write_bytes(event.encoded_dataset())
        except OSError:
            return OUT_OF_RESOURCES
        with self._lock:
            inbox.received.append(ReceivedInstance(sop_uid, str(request.AffectedSOPClassUID),
                                                   path=path))
        return SUCCESS
