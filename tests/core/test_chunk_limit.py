"""`max_msg_chunks` after the upgrade: a message (all its fragments) may span that many reads, no more."""

from __future__ import annotations

import itertools

import pytest
from core_helpers import REGISTER, closed, frame, open_server, sent_close_code, state

from sansio_wss import Cause, Config, PingReceived, SipMessageReceived, State

TEXT, PING = 1, 9


def _feed(data: bytes, cuts: list[int], limit: int) -> tuple[object, ...]:
    conn = open_server(Config(max_msg_chunks=limit))
    bounds = [0, *cuts, len(data)]
    for a, b in itertools.pairwise(bounds):
        conn.receive_data(data[a:b], 1.0)
    return tuple(conn.events())


@pytest.mark.parametrize("limit", [1, 2, 4, 8])
def test_a_message_may_span_exactly_the_limit(limit: int) -> None:
    data = frame(TEXT, REGISTER)
    cuts = list(range(1, limit))  # `limit` reads
    assert _feed(data, cuts, limit) == (SipMessageReceived(REGISTER, False),)


@pytest.mark.parametrize("limit", [1, 2, 4, 8])
def test_one_read_more_fails_with_1008(limit: int) -> None:
    data = frame(TEXT, REGISTER)
    conn = open_server(Config(max_msg_chunks=limit))
    for i in range(limit):
        conn.receive_data(data[i : i + 1], 1.0)
    event = closed(conn.events())
    assert (event.code, event.cause, event.clean) == (1008, Cause.CHUNK_LIMIT, False)
    assert "max_msg_chunks" in event.detail
    assert sent_close_code(conn.data_to_send()) == 1008
    assert state(conn) is State.CLOSED


def test_fragments_count_as_one_message() -> None:
    data = (
        frame(TEXT, REGISTER[:50], fin=False)
        + frame(0, REGISTER[50:200], fin=False)
        + frame(0, REGISTER[200:])
    )
    a, b = len(frame(TEXT, REGISTER[:50], fin=False)), len(data) - 3
    assert _feed(data, [a, b], 3) == (SipMessageReceived(REGISTER, False),)
    assert closed(list(_feed(data, [a, a + 5, b], 3))).cause is Cause.CHUNK_LIMIT  # type: ignore[arg-type]


def test_a_ping_inside_a_message_does_not_reset_the_count() -> None:
    data = frame(TEXT, REGISTER[:50], fin=False) + frame(PING, b"p") + frame(0, REGISTER[50:])
    events = _feed(data, [10, len(data) - 5], 2)
    assert events[0] == PingReceived(b"p")
    assert closed(list(events)).cause is Cause.CHUNK_LIMIT  # type: ignore[arg-type]


def test_the_count_restarts_with_each_message() -> None:
    one = frame(TEXT, REGISTER)
    data = one * 3
    # each message spans 2 reads; the second and third start inside a read that completed the one before
    cuts = [len(one) - 5, 2 * len(one) - 5, 3 * len(one) - 5]
    assert _feed(data, cuts, 2) == (SipMessageReceived(REGISTER, False),) * 3


def test_many_whole_messages_in_one_read_count_once() -> None:
    assert len(_feed(frame(TEXT, REGISTER) * 50, [], 1)) == 50
