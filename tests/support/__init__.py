"""One harness for every test family (unit, integration, e2e, bench): each concept once.

* :mod:`tests.support.ports`: :func:`free_port`, a free loopback TCP port.
* :mod:`tests.support.waits`: :func:`wait_until`, an explicit condition and a deadline
  (never a bare sleep).
* :mod:`tests.support.servers`: :func:`app_client`, an ASGI app's lifespan and an httpx
  client on it in-process; :class:`ServedApp`, an ASGI app served by uvicorn on a loopback
  port in a thread, and the bridge app on it (:class:`RunningGateway`,
  :class:`RunningBridge`).
* :mod:`tests.support.settings`: the bridge configuration builders (an archive entry, a
  whole config, written and loaded as :class:`bridge.config.Settings`).
* :mod:`tests.support.fake_fhir`: :class:`FakeFhir`, an in-process FHIR R4 server (an
  ``httpx.MockTransport`` face for writers, an ASGI face for readers).
* :mod:`tests.support.fake_archive`: :class:`FakeArchive`, an in-process DICOMweb archive
  (an ``httpx.MockTransport`` face, an aiohttp face on a port).

Test families keep their own presets (sync defaults, the gateway's viewer secret, ...) in
their ``*_helpers`` modules, built on these.
"""
