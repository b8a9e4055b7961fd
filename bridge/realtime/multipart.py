"""Checking a ``multipart/related`` STOW-RS body as it streams past, in bounded memory.

PS3.18 10.5.1.1: a STOW-RS request of DICOM instances is ``multipart/related;
type="application/dicom"; boundary=...``, each part a PS3.10 file (128-byte preamble,
then ``DICM``).  The proxy never holds the body; this scanner keeps only a few bytes of
look-behind, so it can say which part is wrong (not DICOM, a wrong Content-Type, a missing
closing delimiter) before the last byte reaches the archive.  Multipart syntax per
RFC 2046 5.1.1 (delimiter ``CRLF--boundary``, close ``--boundary--``).
"""

from __future__ import annotations

from email.message import Message

from bridge.errors import Permanent

DICOM = "application/dicom"
_PREAMBLE = 132  # 128-byte preamble + "DICM" (PS3.10 7.1)
_MAX_HEADERS = 16384
_MAX_PREAMBLE = 65536


class MultipartError(Permanent):
    """The body is not an acceptable STOW-RS multipart; the message names the problem and
    ``http_status`` the answer (``status``: 400, or 415 for an unsupported media type)."""

    kind = "multipart"

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.http_status: int = status


def parse_content_type(value: str | None) -> bytes:
    """The boundary of an acceptable STOW-RS Content-Type, else :class:`MultipartError`.

    415 for a media type other than ``multipart/related; type="application/dicom"``
    (PS3.18 10.5.1.1; we do not accept the JSON/XML metadata + bulk data form), 400 for a
    multipart without a usable boundary.
    """
    if not value:
        raise MultipartError("Content-Type is missing; expected multipart/related; "
                             f'type="{DICOM}"', status=415)
    msg = Message()
    msg["content-type"] = value
    media = msg.get_content_type()
    if media != "multipart/related":
        raise MultipartError(f"Content-Type {media} is not supported; expected "
                             f'multipart/related; type="{DICOM}" (PS3.18 10.5.1.1)', status=415)
    part_type = msg.get_param("type")
    if part_type is not None and str(part_type).lower() != DICOM:
        raise MultipartError(f"multipart/related type={part_type} is not supported; only "
                             f'type="{DICOM}" (PS3.10 files) is accepted', status=415)
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise MultipartError("multipart/related Content-Type has no boundary parameter")
    if len(boundary) > 70:
        raise MultipartError("multipart boundary longer than 70 characters (RFC 2046 5.1.1)")
    return boundary.encode("latin-1")


class MultipartInspector:
    """Feed it the body chunk by chunk; it raises :class:`MultipartError` at the first fault."""

    def __init__(self, boundary: bytes) -> None:
        self._delim = b"--" + boundary
        self._body_delim = b"\r\n" + self._delim
        self._state = "preamble"
        self._buf = b""
        self._head = bytearray()
        self._seen = 0
        #: number of parts seen so far (complete or not)
        self.parts = 0

    def feed(self, chunk: bytes) -> None:
        buf = self._buf + chunk if self._buf else chunk
        self._seen += len(chunk)
        pos = 0
        while True:
            state = self._state
            if state == "preamble":
                i = buf.find(self._delim, pos)
                if i < 0:
                    if self._seen > _MAX_PREAMBLE:
                        raise MultipartError("no multipart boundary found in the first "
                                             f"{_MAX_PREAMBLE} bytes (wrong boundary?)")
                    pos = max(pos, len(buf) - len(self._delim))
                    break
                pos = i + len(self._delim)
                self._state = "delimiter"
            elif state == "delimiter":
                if len(buf) - pos < 2:
                    break
                if buf[pos:pos + 2] == b"--":
                    self._state = "end"
                    pos += 2
                    continue
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if len(buf) - pos > 256:
                        raise MultipartError(f"garbage after the boundary of part {self.parts}")
                    break
                if buf[pos:eol].strip(b" \t"):
                    raise MultipartError(f"garbage after the boundary of part {self.parts}")
                pos = eol + 2
                self._state = "headers"
            elif state == "headers":
                if buf.startswith(b"\r\n", pos):
                    end, headers = pos + 2, b""
                else:
                    j = buf.find(b"\r\n\r\n", pos)
                    if j < 0:
                        if len(buf) - pos > _MAX_HEADERS:
                            raise MultipartError(f"part {self.parts + 1}: headers over "
                                                 f"{_MAX_HEADERS} bytes")
                        break
                    end, headers = j + 4, buf[pos:j]
                self.parts += 1
                self._check_headers(headers)
                self._head = bytearray()
                pos = end
                self._state = "body"
            elif state == "body":
                i = buf.find(self._body_delim, pos)
                stop = i if i >= 0 else max(pos, len(buf) - len(self._body_delim))
                if len(self._head) < _PREAMBLE:
                    self._head += buf[pos:min(stop, pos + _PREAMBLE - len(self._head))]
                if i < 0:
                    pos = stop
                    break
                self._end_part()
                pos = i + len(self._body_delim)
                self._state = "delimiter"
            else:  # "end": the epilogue is ignored (RFC 2046 5.1.1)
                pos = len(buf)
                break
        self._buf = buf[pos:]

    def _check_headers(self, raw: bytes) -> None:
        msg = Message()
        for line in raw.decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise MultipartError(f"part {self.parts}: malformed header line {line[:60]!r}")
            msg[name.strip()] = value.strip()
        ctype = msg.get("content-type")
        if ctype is not None:
            probe = Message()
            probe["content-type"] = ctype
            if probe.get_content_type() != DICOM:
                raise MultipartError(f"part {self.parts} has Content-Type "
                                     f"{probe.get_content_type()}, expected {DICOM}")

    def _end_part(self) -> None:
        head = bytes(self._head)
        if len(head) < _PREAMBLE or head[128:132] != b"DICM":
            raise MultipartError(f"part {self.parts} is not a DICOM PS3.10 file (no 'DICM' "
                                 "after the 128-byte preamble, PS3.10 7.1)")

    def finish(self) -> None:
        """Call after the last chunk; raises unless the body was closed properly."""
        if self._state != "end":
            if self.parts == 0:
                raise MultipartError("the body holds no multipart part (wrong boundary?)")
            raise MultipartError(
                f"the body ends inside part {self.parts}, without the closing delimiter "
                f"{self._delim.decode('latin-1')}--")
        if self.parts == 0:
            raise MultipartError("the body holds no multipart part")
