"""RFC 6455 for the native stream listener: the opening handshake and the frames, as bytes.

Server frames are unmasked, so a message is framed once (`text_frame`) and the same bytes are
written to every connection that should receive it. Client frames must be masked (else 1002),
control frames short and whole (else 1002), data frames at most `max_payload` bytes (else 1009):
`parse_frame` takes one frame off a buffer or raises `ProtocolError` with the close code.

The handshake: `parse_request` reads a request head (request line and headers, already bounded
in size by the caller) and `upgrade_key` checks it is a WebSocket upgrade of `path`, raising
`HandshakeError` with the HTTP status to answer (400 bad request, 404 another path, 405 not GET,
426 not an upgrade or another protocol version); `switching_protocols` is the 101 answer and
`http_response` any other, with an RFC 9457 problem body (`problem`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = frozenset({CONTINUATION, TEXT, BINARY})
CONTROL_OPCODES = frozenset({CLOSE, PING, PONG})

PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009
NO_STATUS = 1005

REASONS = {
    101: "Switching Protocols",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
TITLES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    426: "Upgrade required",
    431: "Request header fields too large",
    500: "Internal error",
}


# ---------------------------------------------------------------- frames


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked server frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def text_frame(text: str) -> bytes:
    return frame(TEXT, text.encode())


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason is cut to fit a control frame (123 bytes, whole characters)."""
    data = reason.encode()[:123].decode(errors="ignore").encode()
    return frame(CLOSE, code.to_bytes(2, "big") + data)


class ProtocolError(Exception):
    """The client broke the protocol: the connection is failed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def parse_frame(buf: bytearray, max_payload: int) -> tuple[bool, int, bytes] | None:
    """Take one client frame off `buf`: (fin, opcode, unmasked payload); None until it is whole."""
    if len(buf) < 2:
        return None
    first, second = buf[0], buf[1]
    fin, opcode = bool(first & 0x80), first & 0x0F
    if first & 0x70:
        raise ProtocolError(PROTOCOL_ERROR, "reserved bits set (no extension was negotiated)")
    if opcode not in DATA_OPCODES and opcode not in CONTROL_OPCODES:
        raise ProtocolError(PROTOCOL_ERROR, f"unknown opcode {opcode}")
    if not second & 0x80:
        raise ProtocolError(PROTOCOL_ERROR, "client frames must be masked")
    length, start = second & 0x7F, 2
    if opcode in CONTROL_OPCODES and (length > 125 or not fin):
        raise ProtocolError(PROTOCOL_ERROR, "control frames must be whole and at most 125 bytes")
    if length == 126:
        if len(buf) < 4:
            return None
        length, start = int.from_bytes(buf[2:4], "big"), 4
    elif length == 127:
        if len(buf) < 10:
            return None
        length, start = int.from_bytes(buf[2:10], "big"), 10
    if length > max_payload:
        raise ProtocolError(MESSAGE_TOO_BIG, f"frame of {length} bytes; at most {max_payload}")
    end = start + 4 + length
    if len(buf) < end:
        return None
    mask = bytes(buf[start : start + 4])
    payload = unmask(bytes(buf[start + 4 : end]), mask)
    del buf[:end]
    return fin, opcode, payload


def parse_close(payload: bytes) -> tuple[int, str]:
    """The code and reason of a client's close frame (NO_STATUS when it carries none)."""
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        raise ProtocolError(PROTOCOL_ERROR, "a close frame's code takes two bytes")
    code = int.from_bytes(payload[:2], "big")
    if not (code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or 3000 <= code < 5000):
        raise ProtocolError(PROTOCOL_ERROR, f"close code {code} may not be sent")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(INVALID_DATA, "close reason is not UTF-8") from exc
    return code, reason


# ---------------------------------------------------------------- the opening handshake


class HandshakeError(Exception):
    """A request that is not a WebSocket upgrade of the stream: answered with `status`."""

    def __init__(self, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; repeats joined by ", "

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> bytes:
        return self.target.partition("?")[2].encode("latin-1")


def parse_request(head: bytes) -> Request:
    """The request line and headers of `head` (without the blank line that ends it)."""
    try:
        text = head.decode("latin-1")
        line, *lines = text.split("\r\n")
        method, target, version = line.split(" ")
    except ValueError as exc:
        raise HandshakeError(400, "malformed request line") from exc
    if not version.startswith("HTTP/1.") or not target.startswith("/"):
        raise HandshakeError(400, "an HTTP/1.1 request for a path is expected")
    headers: dict[str, str] = {}
    for raw in lines:
        name, colon, value = raw.partition(":")
        if not colon or not name or name != name.strip():
            raise HandshakeError(400, "malformed header line")
        key, value = name.lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Request(method, target, version, headers)


def _tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",")}


def upgrade_key(request: Request, path: str) -> str:
    """The client's Sec-WebSocket-Key once `request` is a valid upgrade of `path`."""
    if request.path != path:
        raise HandshakeError(404, f"no such path here; this port serves WebSocket {path} only")
    if request.method != "GET":
        raise HandshakeError(405, "a WebSocket handshake is a GET", ((b"allow", b"GET"),))
    upgrade = ((b"upgrade", b"websocket"), (b"sec-websocket-version", b"13"))
    h = request.headers
    if "websocket" not in _tokens(h.get("upgrade", "")) or "upgrade" not in _tokens(h.get("connection", "")):
        raise HandshakeError(426, "this path takes only a WebSocket upgrade", upgrade)
    if request.version != "HTTP/1.1":
        raise HandshakeError(400, "a WebSocket handshake needs HTTP/1.1")
    if h.get("sec-websocket-version") != "13":
        raise HandshakeError(426, "only WebSocket protocol version 13 is spoken", upgrade)
    if "host" not in h:
        raise HandshakeError(400, "the Host header is required")
    key = h.get("sec-websocket-key", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError(key)
    except (ValueError, binascii.Error) as exc:
        raise HandshakeError(400, "Sec-WebSocket-Key must be 16 bytes in base64") from exc
    return key


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()  # noqa: S324 (RFC 6455)


def switching_protocols(key: str) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )


def problem(status: int, detail: str) -> bytes:
    title = TITLES.get(status, REASONS.get(status, "Error"))
    return orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})


def http_response(status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection; content-type problem+json unless given."""
    headers = list(headers)
    names = {name.lower() for name, _ in headers}
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}".encode()]
    if b"content-type" not in names:
        lines.append(b"Content-Type: application/problem+json")
    if b"content-length" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines += [name + b": " + value for name, value in headers if name.lower() != b"connection"]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
