"""The state tables are complete and consistent."""

from __future__ import annotations

from sansio_wss._state import COMMANDS, TRANSITIONS, State, Trigger


def test_every_live_state_can_fail_and_see_eof() -> None:
    for state in (State.CONNECTING, State.OPEN, State.CLOSING):
        assert TRANSITIONS[state, Trigger.FAIL] is State.CLOSED
        assert TRANSITIONS[state, Trigger.EOF] is State.CLOSED


def test_closed_is_terminal_and_reachable_from_everywhere() -> None:
    assert not [key for key in TRANSITIONS if key[0] is State.CLOSED]
    reachable = {State.CONNECTING}
    for _ in State:
        reachable |= {TRANSITIONS[k] for k in TRANSITIONS if k[0] in reachable}
    assert reachable == set(State)


def test_commands() -> None:
    assert COMMANDS["send"] == {State.OPEN}
    assert COMMANDS["close"] == set(State)
    assert COMMANDS["accept"] == COMMANDS["reject"] == {State.CONNECTING}
