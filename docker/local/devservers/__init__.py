"""The rooms of the dev stack; the public names and the command are in ``devstack.py``.

* :mod:`devservers.process` - a server process (temp dir, log, free port, readiness probe,
  relaunch, stop) and the registry and exit hooks that stop every one of them;
* :mod:`devservers.orthanc`, :mod:`devservers.postgres`, :mod:`devservers.hapi` - one
  server each, with the endpoint (URLs, credentials) it writes to the state file;
* :mod:`devservers.stack` - any subset of the three started and stopped together, the
  state file;
* :mod:`devservers.cli` - ``devstack.py up``.

Only the standard library and httpx are used, so the package imports by path
(``sys.path.insert(0, "docker/local")``) without installing the project.
"""
