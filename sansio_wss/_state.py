"""The connection state machine as tables: every state change and every allowed command is here.

Rule: a state changes only through `TRANSITIONS`; a command is allowed only
where `COMMANDS` says. `tools/state_diagram.py` draws both tables, so the
diagram in the README cannot drift from the code.
"""

from __future__ import annotations

import enum

__all__ = ["COMMANDS", "TRANSITIONS", "State", "TransportAction", "Trigger"]


class State(enum.Enum):
    """Where a connection is in its life."""

    CONNECTING = "CONNECTING"
    """The opening handshake is under way."""
    OPEN = "OPEN"
    """SIP messages flow both ways."""
    CLOSING = "CLOSING"
    """We sent a Close frame and wait for the peer's; received messages are still delivered."""
    CLOSED = "CLOSED"
    """`ConnectionClosed` was emitted; further input is read only to end the transport politely."""


class TransportAction(enum.Enum):
    """What the adapter does with the transport, after writing `data_to_send()`."""

    NONE = "NONE"
    """Keep it open and keep reading."""
    HALF_CLOSE = "HALF_CLOSE"
    """End our direction (TCP FIN, TLS close_notify), keep reading and report EOF:
    the core asks for CLOSE when the peer is done or `close_timeout` passes."""
    CLOSE = "CLOSE"
    """Close it now (TLS: close_notify first)."""


class Trigger(enum.Enum):
    """What moves a connection from one state to another."""

    OPENED = "opened"
    SEND_CLOSE = "send close"
    RECEIVE_CLOSE = "receive close"
    FAIL = "fail"
    EOF = "eof"


TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (State.CONNECTING, Trigger.OPENED): State.OPEN,
    (State.CONNECTING, Trigger.FAIL): State.CLOSED,
    (State.CONNECTING, Trigger.EOF): State.CLOSED,
    (State.CONNECTING, Trigger.SEND_CLOSE): State.CLOSED,
    (State.OPEN, Trigger.SEND_CLOSE): State.CLOSING,
    (State.OPEN, Trigger.RECEIVE_CLOSE): State.CLOSED,
    (State.OPEN, Trigger.FAIL): State.CLOSED,
    (State.OPEN, Trigger.EOF): State.CLOSED,
    (State.CLOSING, Trigger.RECEIVE_CLOSE): State.CLOSED,
    (State.CLOSING, Trigger.FAIL): State.CLOSED,
    (State.CLOSING, Trigger.EOF): State.CLOSED,
}
"""(state, trigger) -> next state. A pair not listed cannot happen."""

COMMANDS: dict[str, frozenset[State]] = {
    "accept": frozenset({State.CONNECTING}),
    "reject": frozenset({State.CONNECTING}),
    "send": frozenset({State.OPEN}),
    "ping": frozenset({State.OPEN}),
    "close": frozenset(State),
}
"""Command -> states where it is allowed. Outside them, `send` and `ping` raise
ConnectionClosedError in CLOSING and CLOSED (a race with the peer); every other
refusal is LocalProtocolError. `close()` is allowed everywhere and does nothing
once closing."""
