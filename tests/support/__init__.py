"""One harness for every test family (unit, integration, e2e, bench): each concept once.

* :mod:`tests.support.ports`: :func:`free_port`, a free loopback TCP port.
* :mod:`tests.support.waits`: :func:`wait_until`, an explicit condition and a deadline
  (never a bare sleep).
* :mod:`tests.support.servers`: :class:`ServedApp`, an ASGI app served by uvicorn on a
  loopback port in a thread, and the bridge app on it (:class:`RunningGateway`,
  :class:`RunningBridge`).
* :mod:`tests.support.settings`: the bridge configuration builders (an archive entry, a
  whole config, written and loaded as :class:`bridge.config.Settings`).
* :mod:`tests.support.fake_fhir`: :class:`FakeFhir`, an in-process FHIR R4 server.
* :mod:`tests.support.fake_archive`: :class:`FakeArchive`, an in-process DICOMweb archive.

Test families keep their own presets (sync defaults, the gateway's viewer secret, ...) in
their ``*_helpers`` modules, built on these.
"""
