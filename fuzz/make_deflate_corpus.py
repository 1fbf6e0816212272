"""Write the labelled seeds of fuzz_deflate (fuzz/corpus/fuzz_deflate/) and check each reaches its target."""

from __future__ import annotations

from collections.abc import Callable

import fuzz_deflate
from make_corpus import Seed, checked, write

from sansio_wss import SipMessageReceived

SERVER_OFFER = 24  # offer flags: client_max_window_bits without a value
CLIENT_ANSWER = 4 | 1  # answer flags: server_no_context_takeover, server_max_window_bits=<int>


def opened(server: bool, flags: int, bits: int | None = None) -> Seed:
    """Open with window 12 (index 3) and max_message_size 4096 (index 2)."""
    seed = Seed().bool(server).int(0, 6, 3).int(0, 3, 2).int(0, 63, flags)
    return seed if bits is None else seed.int(9, 12, bits)


def compressed(
    seed: Seed, sip: int, text: bool, bits: int, top: int = 12, content: bytes = b"", first: bool = True
) -> Seed:
    """A message op: kind 0, a SIP sample (or `content`), compressed in one piece (by a new
    compressor, or the last one when not `first`), one frame, one read."""
    seed.int(0, 7, 0).int(0, 5, 0).bool(text)
    if content:
        seed.int(0, 3, 1).int(0, 300, len(content)).take(content)
    else:
        seed.int(0, 3, 0).int(0, 7, sip)
    seed.int(0, 15, 1)  # not rogue
    if first:
        seed.int(9, top, bits).int(0, 9, 6)  # window, level
    else:
        seed.bool(True)  # the compressor of the last message, its context
    seed.int(0, 3, 0)  # compressed in one piece
    return seed.int(0, 7, 1).bool(True).int(0, 3, 0).int(0, 3, 0)  # sync flush, one frame, one read


def delivered(count: int) -> Callable[[fuzz_deflate.Run], bool]:
    def ok(run: fuzz_deflate.Run) -> bool:
        return (
            run.failed is None and sum(isinstance(e, SipMessageReceived) for e in run.watch.events) == count
        )

    return ok


def failed(code: int) -> Callable[[fuzz_deflate.Run], bool]:
    return lambda run: run.failed == code


def deflate_seeds() -> dict[str, tuple[bytes, Callable[[fuzz_deflate.Run], bool]]]:
    server = opened(True, SERVER_OFFER)
    compressed(compressed(server, 0, True, 12), 1, True, 12, first=False)
    client = compressed(opened(False, CLIENT_ANSWER, 10), 2, True, 10, top=10)
    bomb = opened(True, SERVER_OFFER).int(0, 7, 0).int(0, 5, 4).bool(False).int(0, 1, 1).int(0, 3, 0)
    raw = opened(False, CLIENT_ANSWER, 12).int(0, 7, 0).int(0, 5, 3).bool(False).int(0, 200, 3)
    raw.take(b"\xff\xff\xff").int(0, 3, 0).int(0, 3, 0)
    utf8 = compressed(opened(True, SERVER_OFFER), 0, True, 11, content=b"\xc3\x28 not UTF-8")
    send = opened(True, SERVER_OFFER).int(0, 7, 6).bool(True).int(0, 3, 0).int(0, 7, 0)
    compressed(send, 0, True, 12)
    reserved = opened(False, CLIENT_ANSWER, 9).int(0, 7, 5).int(0, 4, 0)
    return {
        "server_two_messages": (server.value(), delivered(2)),
        "client_invite": (client.value(), delivered(1)),
        "bomb_16mb_1009": (bomb.value(), failed(1009)),
        "raw_bytes_1002": (raw.value(), failed(1002)),
        "inflated_not_utf8_1007": (utf8.value(), failed(1007)),
        "sends_then_message": (send.value(), delivered(1)),
        "rsv1_on_ping_1002": (reserved.value(), failed(1002)),
    }


def main() -> None:
    write("fuzz_deflate", checked("deflate", fuzz_deflate.run, deflate_seeds()))


if __name__ == "__main__":
    main()
