"""The strict HTTP head parser and writer used by the handshake."""

from __future__ import annotations

import pytest

from sansio_wss._http import HttpError, parse_request_head, parse_response_head, render_response


def test_request_fields_keep_order_case_and_trim_whitespace() -> None:
    method, target, fields = parse_request_head(b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nX-A:  v 1 \t\r\nx-a:")
    assert (method, target) == ("GET", "/a?b=c")
    assert fields == (("Host", "h"), ("X-A", "v 1"), ("x-a", ""))


def test_response() -> None:
    status, reason, fields = parse_response_head(b"HTTP/1.1 404 Not Found\r\nA: b")
    assert (status, reason, fields) == (404, "Not Found", (("A", "b"),))
    assert parse_response_head(b"HTTP/1.1 101 ")[:2] == (101, "")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"HTTP/1.1 20 OK", 0),
        (b"HTTP/2 200 OK", 0),
        (b"HTTP/1.0 200 OK", 0),
        (b"HTTP/1.1 200 OK\r\nbad line", 200),
        (b"HTTP/1.1 200 OK\r\n folded", 200),
    ],
)
def test_bad_responses(head: bytes, status: int) -> None:
    with pytest.raises(HttpError) as info:
        parse_response_head(head)
    assert info.value.status == status


def test_obs_fold_is_named() -> None:
    with pytest.raises(HttpError, match="folding"):
        parse_request_head(b"GET / HTTP/1.1\r\nA: b\r\n c")


def test_render() -> None:
    assert render_response(404, (("A", "b"),), b"x") == b"HTTP/1.1 404 Not Found\r\nA: b\r\n\r\nx"
    assert render_response(599, ()) == b"HTTP/1.1 599 Error\r\n\r\n"
