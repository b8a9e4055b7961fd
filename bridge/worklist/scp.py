"""Modality Worklist SCP: C-FIND of the Modality Worklist Information Model - FIND
(1.2.840.10008.5.1.4.31, PS3.4 K.6) over an :class:`ItemSource`, with pynetdicom.

- Verification (C-ECHO) is answered too, so a modality can test its configuration.
- Only the configured calling AE titles may associate (others are rejected at association,
  PS3.8 Table 9-21 reason 3 "calling AE title not recognized").
- Each match is answered Pending (0xFF00) with the asked keys only and its
  SpecificCharacterSet: ``ISO_IR 192`` (UTF-8) when a value is outside ASCII, else
  ``ISO_IR 100`` (PS3.3 C.12.1.1.2).
- With an :class:`MppsKeeper`, the same AE is the Modality Performed Procedure Step SCP
  (N-CREATE / N-SET of 1.2.840.10008.3.1.2.3.3, PS3.4 F.7): each refusal is answered with
  its DIMSE status, the attribute named in Error Comment (and Error ID 0xA710 for a final
  step, PS3.4 F.7.2.2.2).
- A query the worklist cannot evaluate is answered with one failure status (0xA900 key
  outside Table K.6-1, 0xC001 malformed value, 0xC002 anything else) and an Error Comment
  (0000,0902); the SCP itself never fails.  A cancel (C-CANCEL) ends with 0xFE00.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Iterator
from typing import Any, Final

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer

from bridge.errors import ConfigError
from bridge.worklist.errors import QueryError
from bridge.worklist.matching import Matcher, check_query
from bridge.worklist.mpps import MPPS_SOP_CLASS, MppsError
from bridge.worklist.mpps_store import MppsKeeper
from bridge.worklist.source import ItemSource

logger = logging.getLogger(__name__)

#: Modality Worklist Information Model - FIND (PS3.4 K.6, PS3.6 Annex A)
MWL_FIND: Final = "1.2.840.10008.5.1.4.31"
#: Verification SOP Class (PS3.4 A.4)
VERIFICATION: Final = "1.2.840.10008.1.1"
PENDING: Final = 0xFF00
SUCCESS: Final = 0x0000
CANCELLED: Final = 0xFE00
UNABLE_TO_PROCESS: Final = 0xC002
#: a DIMSE-N request the SCP failed on (PS3.7 C.4.3: Processing failure)
UNABLE_TO_PROCESS_N: Final = 0x0110


def _status(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]  # LO
    return status


def _charset(ds: Dataset) -> str:
    """ISO_IR 192 when any text of the response is outside ASCII."""
    def texts(level: Dataset) -> Iterator[str]:
        for elem in level:
            if elem.VR == "SQ":
                for item in elem.value:
                    yield from texts(item)
            elif elem.value is not None and elem.VR in ("PN", "LO", "SH", "LT", "ST", "UT",
                                                          "UC"):
                yield str(elem.value)
    return "ISO_IR 192" if any(not t.isascii() for t in texts(ds)) else "ISO_IR 100"


class _NoDelayServer(ThreadedAssociationServer):
    """pynetdicom's server with TCP_NODELAY on each accepted connection.  A C-FIND answer
    is written as a command PDU then a data set PDU; with Nagle's algorithm the second
    write waits for the modality's delayed ACK (40 ms on Linux) on every Pending and the
    final response (measured: a 1-match C-FIND took 95 ms, a C-ECHO 6 ms)."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


class _Ae(AE):
    """An AE whose servers are :class:`_NoDelayServer`."""

    def make_server(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["server_class"] = _NoDelayServer
        return super().make_server(*args, **kwargs)


class WorklistScp:
    """A Modality Worklist SCP on ``host:port`` (port 0: the system's pick, see
    :attr:`port`) answering from ``source``."""

    def __init__(self, *, source: ItemSource, ae_title: str, calling_ae_titles: Iterable[str],
                 host: str = "127.0.0.1", port: int = 0,
                 mpps: MppsKeeper | None = None) -> None:
        allowed = sorted({t.strip() for t in calling_ae_titles if t.strip()})
        if not allowed:
            raise ConfigError("worklist SCP: name the calling AE titles allowed to query "
                              "(an empty list would accept every modality)")
        self._source = source
        self._ae = _Ae(ae_title=ae_title)
        self._ae.add_supported_context(MWL_FIND)
        # modalities test the worklist's configuration with C-ECHO (PS3.4 A.4); pynetdicom
        # answers it with Success by default
        self._ae.add_supported_context(VERIFICATION)
        self._mpps = mpps
        if mpps is not None:
            self._ae.add_supported_context(MPPS_SOP_CLASS)
        self._ae.require_calling_aet = allowed
        self._address = (host, port)
        self._server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the worklist SCP is not started")
        port: int = self._server.server_address[1]
        return port

    def start(self) -> None:
        """Listen in background threads."""
        handlers: list[Any] = [(evt.EVT_C_FIND, self._on_find)]
        if self._mpps is not None:
            handlers += [(evt.EVT_N_CREATE, self._on_n_create), (evt.EVT_N_SET, self._on_n_set)]
        self._server = self._ae.start_server(self._address, block=False,
                                             evt_handlers=handlers)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_find(self, event: Any) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        calling = event.assoc.requestor.ae_title
        try:
            query: Dataset = event.identifier
            check_query(query)
            matcher = Matcher(query)
            items = self._source.candidates(query)
        except QueryError as exc:
            logger.info("worklist query refused", extra={"calling_ae": calling,
                                                         "status": exc.status,
                                                         "keyword": exc.keyword})
            yield _status(exc.status, exc.message), None
            return
        except Exception:  # a query pydicom cannot decode: a status, never a crash
            logger.exception("worklist query failed", extra={"calling_ae": calling})
            yield _status(UNABLE_TO_PROCESS, "the query could not be read"), None
            return
        found = 0
        for item in items:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            try:
                if not matcher.matches(item):
                    continue
                answer = matcher.response(item)
            except Exception:
                logger.exception("worklist item could not be matched",
                                 extra={"calling_ae": calling})
                yield _status(UNABLE_TO_PROCESS, "an item could not be matched"), None
                return
            answer.SpecificCharacterSet = _charset(answer)
            found += 1
            yield PENDING, answer
        logger.info("worklist query answered", extra={"calling_ae": calling,
                                                      "matches": found})
        yield SUCCESS, None

    # --- MPPS (PS3.4 F.7.2) -------------------------------------------------------------

    def _mpps_refused(self, exc: MppsError, calling: str) -> tuple[Dataset, None]:
        logger.info("mpps refused", extra={"calling_ae": calling, "status": exc.status,
                                           "keyword": exc.keyword})
        status = _status(exc.status, exc.message)
        if exc.error_id is not None:
            status.ErrorID = exc.error_id
        return status, None

    def _on_n_create(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        calling = event.assoc.requestor.ae_title
        assert self._mpps is not None
        uid = event.request.AffectedSOPInstanceUID
        try:
            attributes: Dataset = event.attribute_list
            # PS3.7 10.1.5.1.4: without an Affected SOP Instance UID the SCP names one
            record = self._mpps.create(str(uid) if uid else _new_uid(), attributes)
        except MppsError as exc:
            return self._mpps_refused(exc, calling)
        except Exception:
            logger.exception("mpps N-CREATE failed", extra={"calling_ae": calling})
            return _status(UNABLE_TO_PROCESS_N, "the step could not be recorded"), None
        logger.info("mpps created", extra={"calling_ae": calling, "status": record.status})
        answer = Dataset()
        if not uid:
            answer.AffectedSOPInstanceUID = record.sop_instance_uid
        return SUCCESS, answer

    def _on_n_set(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        calling = event.assoc.requestor.ae_title
        assert self._mpps is not None
        try:
            record = self._mpps.set(str(event.request.RequestedSOPInstanceUID),
                                    event.modification_list)
        except MppsError as exc:
            return self._mpps_refused(exc, calling)
        except Exception:
            logger.exception("mpps N-SET failed", extra={"calling_ae": calling})
            return _status(UNABLE_TO_PROCESS_N, "the step could not be recorded"), None
        logger.info("mpps set", extra={"calling_ae": calling, "status": record.status})
        return SUCCESS, Dataset()


def _new_uid() -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=None))  # 2.25 + a random UUID (PS3.5 B.2)
