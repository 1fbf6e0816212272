"""Pages: a plain HTTP GET (no Upgrade) of a configured resource gets its page, nothing else does."""

from __future__ import annotations

import pytest
from core_helpers import action, closed, request, state

from sansio_wss import Cause, Config, ConfigError, HttpPage, Opened, ServerConnection, State, TransportAction

PAGE = HttpPage("/", b"<!doctype html><title>test</title>")
TEXT = HttpPage("/robots.txt", b"User-agent: *\nDisallow: /\n", "text/plain")
CONFIG = Config(pages=(PAGE, TEXT))
PLAIN = ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol")


def get(target: str, config: Config = CONFIG) -> tuple[ServerConnection, bytes]:
    conn = ServerConnection(0.0, config)
    conn.receive_data(request(line=f"GET {target} HTTP/1.1", drop=PLAIN), 0.0)
    return conn, conn.data_to_send()


@pytest.mark.parametrize(("target", "page"), [("/", PAGE), ("/?x=1", PAGE), ("/robots.txt", TEXT)])
def test_a_plain_get_gets_its_page(target: str, page: HttpPage) -> None:
    conn, reply = get(target)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert lines[1:] == [
        f"Content-Type: {page.content_type}",
        f"Content-Length: {len(page.body)}",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "Connection: close",
    ]
    assert body == page.body
    event = closed(conn.events())
    assert (event.cause, event.status, event.clean) == (Cause.PAGE_SERVED, 200, True)
    assert event.detail == f"served the page {page.resource}"
    assert (state(conn), action(conn)) == (State.CLOSED, TransportAction.HALF_CLOSE)
    assert conn.get_timer() == CONFIG.close_timeout  # lingers until the browser closes, bounded
    conn.receive_eof(1.0)
    assert action(conn) is TransportAction.CLOSE


@pytest.mark.parametrize(
    ("target", "config", "status"),
    [("/favicon.ico", CONFIG, 404), ("/robots.txt/", CONFIG, 404), ("/", Config(), 400)],
    ids=["unknown path", "trailing slash", "no pages"],
)
def test_other_plain_requests_fail(target: str, config: Config, status: int) -> None:
    """With pages, an unknown one is 404; without, a request without Upgrade is 400 as ever."""
    conn, reply = get(target, config)
    assert reply.startswith(b"HTTP/1.1 %d " % status)
    event = closed(conn.events())
    assert (event.cause, event.status) == (Cause.HANDSHAKE_FAILED, status)


def test_a_post_gets_400_even_for_a_page() -> None:
    conn = ServerConnection(0.0, CONFIG)
    conn.receive_data(request(line="POST / HTTP/1.1", drop=PLAIN), 0.0)
    assert conn.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_an_upgrade_of_a_page_resource_is_a_websocket() -> None:
    conn = ServerConnection(0.0, CONFIG)
    conn.receive_data(request(line="GET / HTTP/1.1"), 0.0)
    assert conn.data_to_send().startswith(b"HTTP/1.1 101 ")
    assert isinstance(conn.events()[0], Opened)


@pytest.mark.parametrize(
    "pages",
    [
        (PAGE, HttpPage("/", b"again")),
        ("/",),
    ],
    ids=["two pages for one resource", "not an HttpPage"],
)
def test_bad_pages_are_refused(pages: tuple[object, ...]) -> None:
    with pytest.raises(ConfigError, match="pages"):
        Config(pages=pages)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resource": "index.html", "body": b""}, "resource"),
        ({"resource": "/", "body": "text"}, "body"),
        ({"resource": "/", "body": b"", "content_type": "text/html\r\nX: y"}, "content_type"),
    ],
)
def test_bad_page_fields_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"HttpPage.{field}"):
        HttpPage(**kwargs)  # type: ignore[arg-type]
