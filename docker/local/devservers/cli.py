"""Start the real systems around the bridge on free loopback ports, for tests and the demo.

The command line of the dev stack: ``python docker/local/devstack.py up --state
.run/stack.json`` starts the servers, writes their URLs and credentials to the state file
(which the test-suite reuses through ``BRIDGE_TEST_STACK=.run/stack.json``) and runs them
in the foreground until SIGTERM/SIGINT/SIGHUP; then it stops them and removes the state file.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devservers.process import log_tail
from devservers.stack import ALL_COMPONENTS, Stack

__all__ = ["main"]


def _cmd_up(args: argparse.Namespace) -> int:
    components = (
        {c.strip() for c in args.only.split(",") if c.strip()} if args.only else ALL_COMPONENTS
    )
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    stack = Stack(
        hapi_jar=Path(args.hapi_jar) if args.hapi_jar else None,
        notify_lua_script=Path(args.orthanc_lua).resolve() if args.orthanc_lua else None,
        hapi_timeout=args.hapi_timeout,
    )
    state = Path(args.state)
    try:
        t0 = time.monotonic()
        stack.start(components)
        stack.write_state(state)
        print(
            f"devstack: up in {time.monotonic() - t0:.1f} s; state in {state}",
            file=sys.stderr,
            flush=True,
        )
        for service in stack.services():
            print(
                f"devstack:   {service.name}: ready after {service.startup_seconds or 0:.1f} s, "
                f"log {service.log_path}",
                file=sys.stderr,
                flush=True,
            )
        while not stop_requested.wait(1.0):
            for service in stack.services():
                if not service.running:
                    print(
                        f"devstack: {service.name} died; log tail:\n{log_tail(service.log_path)}",
                        file=sys.stderr,
                    )
                    return 1
        return 0
    finally:
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            state.unlink()
        print("devstack: stopped", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start servers, write the state file, run until SIGTERM/^C")
    up.add_argument("--state", default=".run/stack.json", help="where to write URLs/credentials")
    up.add_argument("--only", default="", help="comma list out of orthanc,postgres,hapi")
    up.add_argument("--hapi-jar", default="", help="skip docker/hapi/build.sh, use this jar")
    up.add_argument(
        "--hapi-timeout",
        type=float,
        default=None,
        help="seconds to wait for HAPI (default $BRIDGE_HAPI_START_TIMEOUT or 240)",
    )
    up.add_argument("--orthanc-lua", default="", help="Lua script added to Orthanc LuaScripts")
    args = parser.parse_args(argv)
    if args.command == "up":
        return _cmd_up(args)
    parser.error(f"unknown command {args.command}")
    return 2
