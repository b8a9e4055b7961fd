"""A tiny threaded TCP proxy the fault tests put between the bridge and a real server.

It forwards bytes both ways until told otherwise:

* :meth:`TcpProxy.cut` makes the server "go away": the listening socket is closed (new
  connections are refused) and every open connection is dropped at once, without an
  answer (reset, or closed when the other pump thread gets there first).
* :meth:`TcpProxy.restore` listens again on the same port.
* :meth:`TcpProxy.lose_responses` keeps forwarding requests to the server but resets the
  client's connection as soon as the server starts answering a request that contains
  ``containing``: the server did the work, the client never hears about it (the nastiest
  kind of outage for a writer).

It runs in its own threads, so it keeps working while a test's event loop is busy and for
bridge processes started by the test.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from types import TracebackType

_LOOPBACK = "127.0.0.1"


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST (connection reset), not a clean EOF.

    ``SHUT_RD`` first wakes the pump thread blocked in ``recv`` on this socket: until it
    lets go, the kernel would keep the socket open and send nothing.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lose: bytes | None = None
        #: connections accepted since start (for tests that want to see traffic happened)
        self.accepted = 0

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((_LOOPBACK, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,),
                                        name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{_LOOPBACK}:{self.port}"

    # --- faults -------------------------------------------------------------------------

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._reset_all()

    def restore(self) -> None:
        """Accept connections again, on the same port, forwarding normally."""
        self._lose = None
        if self._listener is None:
            self.start()

    def lose_responses(self, containing: bytes = b"") -> None:
        """Forward requests, but reset the client when the server starts answering a
        request whose bytes include ``containing`` (every request if empty)."""
        self._lose = containing
        self._reset_all()  # no keep-alive connection escapes the fault

    def _reset_all(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            _reset(conn)

    # --- plumbing -----------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by cut()
            self.accepted += 1
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns.update((client, upstream))
            doomed = threading.Event()  # this connection carried a request to lose
            threading.Thread(target=self._pump, args=(client, upstream, None, doomed),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, doomed, None),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket,
              doomed: threading.Event | None, dooms: threading.Event | None) -> None:
        tail = b""
        try:
            for chunk in _chunks(src):
                if dooms is not None and self._lose is not None:
                    if self._lose in tail + chunk:
                        dooms.set()
                    tail = chunk[-256:]
                if doomed is not None and doomed.is_set():
                    # the server has done the work and is answering: the client never hears
                    _reset(dst)
                    _reset(src)
                    return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            # one side gone: take the other down too (a reset if it was a fault)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            for sock in (src, dst):
                if sock.fileno() == -1:
                    continue  # already reset
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


def _chunks(sock: socket.socket) -> Iterator[bytes]:
    while True:
        data = sock.recv(65536)
        if not data:
            return
        yield data
