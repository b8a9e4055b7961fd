"""What the real ``imaging-bridge`` console script writes, on a terminal and off one: no
colour codes in log lines or the run commands' output, no alembic lines on every command,
one log line when the state store's schema changes (issue 20 items 10 and 11)."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.state import open_store
from tests.unit.cli.cli_helpers import bridge_env, write_config

SCRIPT = str(Path(sys.executable).with_name("imaging-bridge"))
#: SGR sequences (colours, bold...): ESC [ params m
SGR = re.compile(r"\x1b\[[0-9;]*m")
#: every other control sequence (cursor moves of a progress bar): ESC [ ... letter
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def _on_terminal(args: list[str], *, cwd: Path) -> tuple[int, str]:
    """Run the console script with stdout and stderr on a pseudo-terminal; its exit status
    and everything it wrote (the terminal's CR-LF as LF)."""
    controller, terminal = pty.openpty()
    with subprocess.Popen([SCRIPT, *args], stdin=subprocess.DEVNULL, stdout=terminal,
                          stderr=terminal, cwd=cwd,
                          env={**bridge_env(), "TERM": "xterm-256color", "COLUMNS": "100"}
                          ) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = process.wait(timeout=120)
    os.close(controller)
    return status, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "bridge.yaml", state=tmp_path / "state.db")


def test_backfill_on_a_terminal_writes_log_lines_whole_and_no_colour(tmp_path: Path) -> None:
    # the archive cannot be reached: the scan logs its retries while the progress bar runs,
    # then the run ends with the error
    status, output = _on_terminal(
        ["backfill", "-c", str(_config(tmp_path)), "--settle", "1"], cwd=tmp_path)
    assert status == 1, output
    assert not SGR.search(output), output
    lines = [line for part in CSI.sub("\n", output).split("\n") for line in part.split("\r")]
    retries = [line for line in lines if "archive query failed during the scan" in line]
    assert retries, output
    for line in retries:
        assert TIMESTAMP.match(line), f"a log line that does not start a line: {line!r}"
    assert any(line.startswith("archive-unavailable: ") for line in lines), output


def test_serve_on_a_terminal_writes_no_colour(tmp_path: Path) -> None:
    """uvicorn colours its own lines on a terminal (its default log config, and the
    ``color_message`` it passes along); serve's log lines must come out plain."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path / "bridge.yaml", state=tmp_path / "state.db")
    settings = json.loads(config.read_text())
    settings["api"] = {"port": port, "admin_auth": "none"}
    settings["realtime"] = {"reconcile_interval": 0}
    settings["audit"] = {"enabled": False}
    config.write_text(json.dumps(settings))
    controller, terminal = pty.openpty()
    with subprocess.Popen([SCRIPT, "serve", "-c", str(config)], stdin=subprocess.DEVNULL,
                          stdout=terminal, stderr=terminal, cwd=tmp_path,
                          env={**bridge_env(), "TERM": "xterm-256color"}) as process:
        os.close(terminal)
        output = b""
        try:
            # read until uvicorn says it listens, then stop it as an operator would
            while b"Uvicorn running on" not in output:
                chunk = os.read(controller, 65536)
                assert chunk, output.decode(errors="replace")
                output += chunk
        finally:
            process.send_signal(signal.SIGINT)
            while True:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            status = process.wait(timeout=60)
    os.close(controller)
    text = output.decode(errors="replace")
    assert status == 0, text
    assert "Application startup complete" in text
    assert not SGR.search(text), text
    assert "color_message" not in text


def test_a_report_on_a_terminal_has_no_alembic_lines(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'state.db'}").close()
    status, output = _on_terminal(["failures", "list", "-c", str(_config(tmp_path))],
                                  cwd=tmp_path)
    assert status == 0, output
    assert output == "failed studies: none\n"


def test_a_report_off_a_terminal_has_no_alembic_lines(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'state.db'}").close()
    result = subprocess.run([SCRIPT, "warnings", "list", "-c", str(_config(tmp_path))],
                            capture_output=True, text=True, cwd=tmp_path, env=bridge_env(),
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "\x1b" not in result.stdout


def test_a_schema_migration_is_logged_once(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with caplog.at_level(logging.INFO, logger="bridge.state.migrations"):
        open_store(url).close()
        open_store(url).close()
    records = [r for r in caplog.records if r.name == "bridge.state.migrations"]
    assert [r.getMessage() for r in records] == ["state store schema migrated"]
    assert records[0].__dict__["from_revision"] == "none"
