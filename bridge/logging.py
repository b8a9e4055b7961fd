"""Logging set-up: plain or JSON lines, with study context and redaction.

Log records carry study UIDs, archive names and error kinds in ``extra``; never patient
names, patient IDs, birth dates or tokens.  As a second line of defence the filter below
masks anything that looks like a bearer token, a JWT or a basic-auth header, in the
message and in every field.

Field values often come from the archive (a StudyInstanceUID ``1.2.3.abc<script>``, a value
with a newline), so no value may forge a record or blur the fields around it:

* text: one line per record (a traceback follows on lines indented by two spaces);
  ``key=value`` pairs whose value is bare only when it holds no blank, ``"``, ``=``, ``\\``
  or unprintable character, and is otherwise a double-quoted JSON string (RFC 8259 7
  escapes, non-printable characters as ``\\uXXXX``), so the pairs read back exactly.
* JSON: one object per line (``ensure_ascii``: every control, separator and non-ASCII
  character is escaped); a field named like one of the record's own keys is kept as
  ``x_<name>`` instead of replacing it.  A record timed in ``seconds`` also carries
  ``duration_ms`` (an integer), the name operators search on.  The keys and their meaning
  are documented in docs/log-schema.md, which tests/unit/sync/test_log_schema.py checks
  the main lines against.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from typing import Any

from bridge.config import LogSettings

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
#: uvicorn's copy of its message with terminal colour codes: noise in a log line
_STANDARD |= {"color_message"}
_SECRETS = re.compile(
    r"(?i)(bearer\s+|basic\s+|access_token\W+|client_assertion\W+|refresh_token\W+)"
    r"[A-Za-z0-9._~+/=-]{8,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
)
#: the JSON record's own keys; fields cannot replace them
_JSON_KEYS = ("time", "level", "logger", "message", "exc", "stack")
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: what keeps a text value bare: nothing that separates pairs, quotes or escapes
_NEEDS_QUOTES = frozenset(' "=\\')


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a
                                for a in (record.args if isinstance(record.args, tuple)
                                          else (record.args,)))
        return True


def _escape_char(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    # JSON's \\uXXXX form (RFC 8259 7), as UTF-16 code units for characters above U+FFFF
    units = char.encode("utf-16-be")
    return "".join(f"\\u{int.from_bytes(units[i:i + 2], 'big'):04x}"
                   for i in range(0, len(units), 2))


def _escape_text(text: str) -> str:
    """``text`` with backslashes and every unprintable character (controls, line and
    paragraph separators, bidi overrides, blanks other than the space) escaped."""
    return "".join(_escape_char(c) if c == "\\" or not c.isprintable() else c for c in text)


def escape_value(value: object) -> str:
    """One field value in the text form: bare when unambiguous, else a quoted JSON string."""
    text = redact(str(value))
    if text and not any(c in _NEEDS_QUOTES or not c.isprintable() for c in text):
        return text
    return '"' + "".join(_escape_char(c) if c in _NEEDS_QUOTES - {" ", "="}
                         or not c.isprintable() else c for c in text) + '"'


def _escape_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key) or "_"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record), "level": record.levelname,
            "logger": record.name, "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        fields = _fields(record)
        for key, value in fields.items():
            name = f"x_{key}" if key in _JSON_KEYS else key
            doc[name] = redact(value) if isinstance(value, str) else value
        seconds = fields.get("seconds")
        if "duration_ms" not in fields and isinstance(seconds, int | float) \
                and not isinstance(seconds, bool):
            doc["duration_ms"] = round(seconds * 1000)
        # ensure_ascii (the default) escapes every control and separator: one line
        return json.dumps(doc, default=lambda v: redact(str(v)))


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # a copy: other handlers (pytest's caplog) see the record as it was logged
        shown = copy.copy(record)
        shown.msg, shown.args = _escape_text(record.getMessage()), None
        shown.exc_info, shown.exc_text, shown.stack_info = None, None, None
        line = super().format(shown)
        extra = " ".join(f"{_escape_key(k)}={escape_value(v)}"
                         for k, v in sorted(_fields(record).items()))
        lines = [f"{line} {extra}" if extra else line]
        if record.exc_info:
            lines.append(redact(self.formatException(record.exc_info)))
        if record.stack_info:
            lines.append(self.formatStack(record.stack_info))
        # continuation lines are indented, so none can pass for a record of its own
        head, *rest = "\n".join(lines).split("\n")
        return "\n".join([head, *(f"  {_escape_text(r)}" for r in rest)])


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to ``sys.stderr`` as it is *then*, not as it was at set-up.

    While ``backfill`` shows its progress bar, rich swaps ``sys.stderr`` for a proxy that
    prints above the bar; a handler holding the original stream wrote records into the
    middle of the bar's line, among its colour codes.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        # emit runs under the handler's lock (Handler.handle), so the swap is not racy
        self.stream = sys.stderr
        super().emit(record)


#: libraries whose INFO lines are noise on every command: alembic announces its SQLite
#: implementation each time the state store opens (the schema upgrade itself is logged
#: once by the migration environment, bridge.state.migrations); pynetdicom logs every
#: association, PDU summary and C-GET/C-MOVE sub-operation (a study of 100 instances: 400
#: lines of `migrate run`)
_QUIET = ("alembic", "pynetdicom")


def setup_logging(settings: LogSettings) -> None:
    handler = StderrHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if settings.json_output
                         else PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # httpx logs full request URLs at INFO; those may carry patient identifiers in queries
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in _QUIET:
        # DEBUG shows them all again
        logging.getLogger(name).setLevel(logging.DEBUG if settings.level == "DEBUG"
                                         else logging.WARNING)
