"""Start the real systems around the bridge on free loopback ports, for tests and the demo.

Three throwaway servers, each with its own temporary storage:

* :class:`Orthanc` - the Debian ``orthanc`` binary with the DICOMweb plugin
  (``orthanc-dicomweb``), HTTP basic auth, config written by us.
* :class:`Postgres` - a fresh PostgreSQL 15 cluster (``initdb`` + ``postgres``),
  database ``bridge`` owned by user ``bridge``.
* :class:`Hapi` - the HAPI FHIR JPA launcher jar built by ``docker/hapi/build.sh``.

:class:`Stack` starts any subset of them, and ``python docker/local/devstack.py up
--state .run/stack.json`` runs them in the foreground until SIGTERM/SIGINT, writing
URLs and credentials to the state file (which the test-suite can reuse through
``BRIDGE_TEST_STACK=.run/stack.json``).

This module is the public face (``import devstack``) and the command; the code lives in
the package ``devservers`` next to it, one module per concept (process registry, Orthanc,
PostgreSQL, HAPI, stack, command line).  Only the standard library and httpx are used, so
both can be imported by path (``sys.path.insert(0, "docker/local")``) without installing
the project.

Every process started here is stopped on exit: explicitly by ``stop()``, by an
``atexit`` hook, on SIGTERM/SIGHUP (turned into KeyboardInterrupt when no other
handler is installed) and, as a last resort if the Python process is killed,
through the kernel's parent-death signal (``setpriv --pdeathsig``).

Environment: ``BRIDGE_HAPI_JAR`` (use this jar instead of running build.sh),
``BRIDGE_HAPI_START_TIMEOUT`` (seconds, default 240), ``BRIDGE_DEVSTACK_KEEP=1`` (keep the
temp dirs - data and logs - after stop).
"""

from __future__ import annotations

import sys

from devservers.cli import main
from devservers.hapi import STACK_ARGS as HAPI_STACK_ARGS
from devservers.hapi import Hapi, HapiEndpoint, build_hapi_jar, hapi_start_timeout
from devservers.orthanc import Orthanc, OrthancEndpoint
from devservers.postgres import Postgres, PostgresEndpoint
from devservers.process import DevStackError, PortInUseError, free_port
from devservers.stack import ALL_COMPONENTS, Stack, load_state

__all__ = [
    "ALL_COMPONENTS",
    "HAPI_STACK_ARGS",
    "DevStackError",
    "Hapi",
    "HapiEndpoint",
    "Orthanc",
    "OrthancEndpoint",
    "PortInUseError",
    "Postgres",
    "PostgresEndpoint",
    "Stack",
    "build_hapi_jar",
    "free_port",
    "hapi_start_timeout",
    "load_state",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
