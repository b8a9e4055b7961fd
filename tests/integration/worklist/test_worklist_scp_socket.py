"""The worklist SCP disables Nagle's algorithm on the connections it accepts: a C-FIND
response is a command PDU then a data set PDU, and without TCP_NODELAY each response
waited for the peer's delayed ACK (40 ms on Linux; docs/worklist.md, benchmark).
Loopback only: no stack needed."""

from __future__ import annotations

import socket

from pynetdicom import AE

from bridge.worklist.scp import MWL_FIND, WorklistScp
from bridge.worklist.source import InMemoryWorklist


def test_accepted_connections_have_tcp_nodelay() -> None:
    scp = WorklistScp(source=InMemoryWorklist(), ae_title="BRIDGE_MWL",
                      calling_ae_titles=["NODELAY_SCU"])
    scp.start()
    scu = AE(ae_title="NODELAY_SCU")
    scu.add_requested_context(MWL_FIND)
    try:
        # associate() returns once the SCP accepted: its association exists by then
        assoc = scu.associate("127.0.0.1", scp.port, ae_title="BRIDGE_MWL")
        assert assoc.is_established
        try:
            server = scp._server
            assert server is not None
            accepted = [a.dul.socket.socket for a in server.active_associations
                        if a.dul.socket is not None and a.dul.socket.socket is not None]
            assert accepted
            assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in accepted)
        finally:
            assoc.release()
    finally:
        scp.stop()
