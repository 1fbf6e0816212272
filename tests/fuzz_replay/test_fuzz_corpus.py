"""Replay every committed fuzz seed through its harness, so the fuzz oracles run with the unit tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("atheris")

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
HARNESSES = sorted(path.stem for path in FUZZ.glob("fuzz_*.py"))
SEEDS = [(name, path) for name in HARNESSES for path in sorted((FUZZ / "corpus" / name).glob("*"))]


def load(name: str) -> ModuleType:
    """A module of fuzz/ (the harnesses import their helpers as top-level modules)."""
    if str(FUZZ) not in sys.path:
        sys.path.insert(0, str(FUZZ))
    return importlib.import_module(name)


@pytest.mark.parametrize(("harness", "seed"), SEEDS, ids=[f"{h}/{p.name}" for h, p in SEEDS])
def test_seed_passes_the_oracles(harness: str, seed: Path) -> None:
    load(harness).TestOneInput(seed.read_bytes())


def test_every_harness_has_seeds() -> None:
    assert HARNESSES == [
        "fuzz_connection",
        "fuzz_frames",
        "fuzz_handshake_client",
        "fuzz_handshake_server",
        "fuzz_sip",
    ]
    for harness in HARNESSES:
        assert len([s for h, s in SEEDS if h == harness]) >= 5, harness


def test_committed_corpus_is_what_make_corpus_builds() -> None:
    """Each seed still reaches its target (a harness whose input layout changed fails here), and the
    committed files are the ones `python fuzz/make_corpus.py` writes."""
    make_corpus = load("make_corpus")
    built = {
        "fuzz_handshake_server": make_corpus.checked(
            "server", load("fuzz_handshake_server").run, make_corpus.server_seeds()
        ),
        "fuzz_handshake_client": make_corpus.checked(
            "client", load("fuzz_handshake_client").run, make_corpus.client_seeds()
        ),
        "fuzz_frames": make_corpus.checked("frames", load("fuzz_frames").run, make_corpus.frame_seeds()),
        "fuzz_sip": make_corpus.sip_seeds(),
        "fuzz_connection": make_corpus.checked(
            "connection", load("fuzz_connection").run, make_corpus.connection_seeds()
        ),
    }
    for harness, seeds in built.items():
        committed = {path.name.rsplit("-", 1)[0]: path.read_bytes() for h, path in SEEDS if h == harness}
        assert committed == seeds, f"{harness}: run python fuzz/make_corpus.py"
