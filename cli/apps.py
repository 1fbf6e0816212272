"""What `serve` runs over its endpoint: the app interface, and the `echo` app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["App", "Echo", "Outgoing", "Reply"]


class Outgoing(Protocol):
    """A message an app wants sent over a flow."""

    @property
    def message(self) -> bytes: ...

    @property
    def flow_id(self) -> int: ...

    @property
    def binary(self) -> bool | None:
        """The frame type: None chooses by content (RFC 7118 section 4.2)."""
        ...


class App(Protocol):
    """A sans-IO SIP application: messages in with their flow, messages out to flows."""

    def received(self, message: bytes, flow_id: int, now: float, binary: bool = False) -> Sequence[Outgoing]:
        """What to send for `message`, received over flow `flow_id` at `now` (in a binary frame
        when `binary`)."""
        ...

    def flow_closed(self, flow_id: int) -> None:
        """Flow `flow_id` is gone (a send to it failed): forget what is bound to it."""
        ...


@dataclass(frozen=True)
class Reply:
    """One message for one flow."""

    message: bytes
    flow_id: int
    binary: bool | None = None


class Echo:
    """Sends every message back over the flow it came on, unchanged (for conformance suites)."""

    def received(self, message: bytes, flow_id: int, now: float, binary: bool = False) -> Sequence[Outgoing]:
        """The message itself, back to its flow, in the frame type it came in."""
        return (Reply(message, flow_id, binary),)

    def flow_closed(self, flow_id: int) -> None:
        """Nothing is bound to flows."""
