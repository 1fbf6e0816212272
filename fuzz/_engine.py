"""Start atheris on a harness, instrumenting the library under test only (fast start, focused coverage)."""

from __future__ import annotations

import gc
import shlex
import sys
import types
from collections.abc import Callable

import atheris

__all__ = ["fuzz"]

TARGET = "sansio_wss"


def fuzz(test_one_input: Callable[[bytes], None]) -> None:
    """Instrument every loaded `sansio_wss` function, then hand over to libFuzzer (never returns).

    `atheris.instrument_all()` would do the same for every function of every
    loaded module, the standard library included: about 20 s per start, which
    a 3 s smoke run cannot afford, and coverage feedback from code that is not
    ours only distracts the fuzzer.
    """
    count = 0
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and (obj.__module__ or "").split(".")[0] == TARGET:
            atheris.instrument_func(obj)
            count += 1
    print(f"INFO: instrumented {count} {TARGET} functions", file=sys.stderr)
    # libFuzzer starts itself again through `sh -c argv[0] ...` for -merge, -fork and -jobs; a
    # harness is a script, not an executable, so argv[0] names the interpreter too.
    argv = [f"{shlex.quote(sys.executable)} {shlex.quote(sys.argv[0])}", *sys.argv[1:]]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
