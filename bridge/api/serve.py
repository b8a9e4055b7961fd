"""``imaging-bridge serve``: every listener of the app in one process and one event loop.

One uvicorn server per listener (the public one, and the admin one when ``api.admin_port``
is set).  The public server's lifespan runs the service for both.  A signal (SIGINT,
SIGTERM) stops every server gracefully; a server that stops on its own (start-up failure)
stops the others, so the process never lingers half-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator, Sequence

import uvicorn

from bridge.api.app import Listener, create_listeners
from bridge.config import Settings

#: uvicorn's exit status when a server could not start (uvicorn.config.STARTUP_FAILURE)
STARTUP_FAILURE = 3


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the signals to :func:`_serve_all` (one handler for all
    the servers; uvicorn's own would have each replace the other's)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(listener: Listener, *, lifespan: bool) -> _Server:
    # no access log: QIDO query strings through the gateway carry patient identifiers
    return _Server(uvicorn.Config(listener.app, host=listener.host, port=listener.port,
                                  log_config=None, access_log=False,
                                  lifespan="on" if lifespan else "off"))


async def _serve_all(servers: Sequence[_Server]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop()
        await asyncio.gather(*tasks)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def serve(settings: Settings) -> int:
    """Serve until a signal; the exit status (0, or 3 when a listener could not start)."""
    servers = [_server(listener, lifespan=n == 0)
               for n, listener in enumerate(create_listeners(settings))]
    with asyncio.Runner(loop_factory=servers[0].config.get_loop_factory()) as runner:
        runner.run(_serve_all(servers))
    return 0 if all(server.started for server in servers) else STARTUP_FAILURE
