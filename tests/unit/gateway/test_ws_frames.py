"""RFC 6455 framing and the opening handshake of the native stream listener."""

from __future__ import annotations

import os

import pytest

from kurs_gateway import ws_frames
from kurs_gateway.ws_frames import HandshakeError, ProtocolError

PATH = "/ws/rates/stream"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0
) -> bytes:
    """A frame as a client sends it (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        head = bytes((first, (0x80 if masked else 0) | n))
    elif n < 65536:
        head = bytes((first, (0x80 if masked else 0) | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, (0x80 if masked else 0) | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_the_accept_key_of_the_rfc_example() -> None:
    assert ws_frames.accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in ws_frames.switching_protocols(KEY)


@pytest.mark.parametrize(("size", "header"), [(5, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_server_frames_are_unmasked_with_the_shortest_length(size: int, header: int) -> None:
    framed = ws_frames.frame(ws_frames.TEXT, b"x" * size)
    assert framed[0] == 0x81  # FIN + text
    assert not framed[1] & 0x80  # unmasked
    assert len(framed) == header + size


def test_a_text_frame_carries_the_utf8_text() -> None:
    assert ws_frames.text_frame('{"a":"€"}') == bytes((0x81, 11)) + '{"a":"€"}'.encode()


def test_a_close_frame_cuts_its_reason_to_whole_characters() -> None:
    framed = ws_frames.close_frame(4008, "é" * 100)
    assert framed[0] == 0x88
    assert framed[1] <= 125
    code, reason = ws_frames.parse_close(framed[2:])
    assert code == 4008
    assert reason == "é" * 61


def test_client_frames_are_unmasked_and_taken_off_the_buffer() -> None:
    buf = bytearray(client_frame(ws_frames.TEXT, b"hello") + client_frame(ws_frames.PING, b"p"))
    assert ws_frames.parse_frame(buf, 1024) == (True, ws_frames.TEXT, b"hello")
    assert ws_frames.parse_frame(buf, 1024) == (True, ws_frames.PING, b"p")
    assert not buf


def test_a_partial_frame_waits_for_the_rest() -> None:
    whole = client_frame(ws_frames.BINARY, b"z" * 300)
    buf = bytearray(whole[:3])
    assert ws_frames.parse_frame(buf, 1024) is None
    buf += whole[3:-1]
    assert ws_frames.parse_frame(buf, 1024) is None
    buf += whole[-1:]
    assert ws_frames.parse_frame(buf, 1024) == (True, ws_frames.BINARY, b"z" * 300)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (client_frame(ws_frames.TEXT, b"hi", masked=False), 1002),  # a client must mask
        (client_frame(ws_frames.TEXT, b"hi", rsv=0x40), 1002),  # no extension negotiated
        (client_frame(0x3, b"hi"), 1002),  # reserved opcode
        (client_frame(ws_frames.PING, b"p" * 126), 1002),  # control frames <= 125 bytes
        (client_frame(ws_frames.PING, b"p", fin=False), 1002),  # and never fragmented
        (client_frame(ws_frames.BINARY, b"b" * 2000), 1009),  # over the limit
    ],
)
def test_broken_or_oversized_client_frames_are_refused_with_their_close_code(data: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        ws_frames.parse_frame(bytearray(data), 1024)
    assert info.value.code == code


def test_an_oversized_frame_is_refused_from_its_header_alone() -> None:
    head = client_frame(ws_frames.BINARY, b"b" * 70_000)[:14]
    with pytest.raises(ProtocolError) as info:
        ws_frames.parse_frame(bytearray(head), 65_536)
    assert info.value.code == ws_frames.MESSAGE_TOO_BIG


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"\x03\xe8", None), (b"", None), (b"\x03", 1002), (b"\x03\xed", 1002), (b"\x03\xe8\xff", 1007)],
)
def test_close_payloads(payload: bytes, code: int | None) -> None:
    if code is None:
        assert ws_frames.parse_close(payload)[0] in (1000, ws_frames.NO_STATUS)
        return
    with pytest.raises(ProtocolError) as info:
        ws_frames.parse_close(payload)
    assert info.value.code == code


def head(*lines: str, request: str = f"GET {PATH}?base=EUR HTTP/1.1") -> bytes:
    return "\r\n".join([request, *lines]).encode()


UPGRADE = (
    "Host: 127.0.0.1",
    "Upgrade: websocket",
    "Connection: keep-alive, Upgrade",
    f"Sec-WebSocket-Key: {KEY}",
    "Sec-WebSocket-Version: 13",
)


def test_a_valid_upgrade_gives_its_key_path_and_query() -> None:
    request = ws_frames.parse_request(head(*UPGRADE))
    assert ws_frames.upgrade_key(request, PATH) == KEY
    assert request.path == PATH
    assert request.query == b"base=EUR"
    assert request.headers["connection"] == "keep-alive, Upgrade"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (head(*UPGRADE, request="GET /rates/latest HTTP/1.1"), 404),
        (head(*UPGRADE, request=f"POST {PATH} HTTP/1.1"), 405),
        (head("Host: 127.0.0.1"), 426),  # a plain GET
        (head(*UPGRADE[:4], "Sec-WebSocket-Version: 8"), 426),
        (head(*UPGRADE[:3], "Sec-WebSocket-Key: c2hvcnQ=", UPGRADE[4]), 400),  # not 16 bytes
        (head(*UPGRADE[1:]), 400),  # no Host
        (head(*UPGRADE, request=f"GET {PATH} HTTP/1.0"), 400),
        (head(*UPGRADE, request="GET"), 400),
        (head(*UPGRADE, " folded: header"), 400),
    ],
)
def test_requests_that_are_not_an_upgrade_of_the_stream_are_answered_with_a_status(
    data: bytes, status: int
) -> None:
    with pytest.raises(HandshakeError) as info:
        ws_frames.upgrade_key(ws_frames.parse_request(data), PATH)
    assert info.value.status == status


def test_an_http_answer_closes_and_carries_a_problem() -> None:
    body = ws_frames.problem(426, "this path takes only a WebSocket upgrade")
    answer = ws_frames.http_response(426, body, [(b"upgrade", b"websocket")])
    head_text, _, rest = answer.partition(b"\r\n\r\n")
    assert head_text.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"Content-Type: application/problem+json" in head_text
    assert f"Content-Length: {len(body)}".encode() in head_text
    assert head_text.endswith(b"Connection: close")
    assert rest == body
