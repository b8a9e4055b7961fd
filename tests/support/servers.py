"""ASGI apps for tests: in-process, or on a real loopback port with uvicorn in a thread.

:func:`app_client` enters an app's lifespan and gives an httpx client on it without a
socket.  :class:`ServedApp` serves any ASGI app (a fake FHIR server, an EHR page, the SMART
app alone) on a port; :class:`RunningGateway` and :class:`RunningBridge` serve the bridge's
own app built from settings, without and with its sync workers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any, Self

import httpx
import uvicorn

from bridge.api.app import create_app
from bridge.config import Settings
from tests.support.ports import free_port
from tests.support.waits import wait_until


@contextlib.asynccontextmanager
async def app_client(app: Any, *, base_url: str = "http://bridge.test",
                     headers: Mapping[str, str] | None = None
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """``app``'s lifespan entered (start-up, shut-down at the end of the block) and an httpx
    client on it in-process (``httpx.ASGITransport``) sending ``headers``."""
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, headers=headers,
    ) as client:
        yield client


class ServedApp:
    """``app`` served by uvicorn on ``127.0.0.1:port`` (a free one unless given) in a daemon
    thread, lifespan on; :meth:`start` returns once uvicorn listens.  Also a context
    manager (started on entry, stopped on exit)."""

    def __init__(self, app: Any, port: int | None = None, *, access_log: bool = False) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                lifespan="on", access_log=access_log)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 60.0) -> Self:
        self.thread.start()
        wait_until(self._listening, timeout=timeout, every=0.02,
                   what=f"{type(self).__name__} on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.server.started:
            return True
        if not self.thread.is_alive():
            raise RuntimeError(f"{type(self).__name__} on port {self.port} did not start")
        return False

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RunningGateway(ServedApp):
    """The bridge's app with its sync not running (gateway, SMART app, admin) on
    ``settings.api.port``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__(create_app(settings, run_sync=False), settings.api.port)
        self.dicomweb = f"{self.url}/dicom-web"

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway


class RunningBridge(ServedApp):
    """The bridge's whole app (lifespan, poller, workers, real-time sources) on ``port``
    (a free one unless given), with uvicorn's access log."""

    def __init__(self, settings: Settings, *, port: int | None = None) -> None:
        self.settings = settings
        super().__init__(create_app(settings), port, access_log=True)

    @property
    def realtime(self) -> Any:
        return self.app.state.realtime
