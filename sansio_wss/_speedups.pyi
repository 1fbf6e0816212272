"""Optional C helpers for sansio_wss (built when a compiler is available)."""

def unmask_from(buffer: bytes, start: int, stop: int, /) -> bytes:
    """`buffer[start:stop]` XOR the 4-byte mask in `buffer[start - 4:start]`."""
