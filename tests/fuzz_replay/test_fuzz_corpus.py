"""Replay every committed fuzz seed through its harness, so the fuzz oracles run with the unit tests."""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("atheris")

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
HARNESSES = sorted(path.stem for path in FUZZ.glob("fuzz_*.py"))


def load(name: str) -> ModuleType:
    """A module of fuzz/ (the harnesses import their helpers as top-level modules)."""
    if str(FUZZ) not in sys.path:
        sys.path.insert(0, str(FUZZ))
    return importlib.import_module(name)


def _corpus(grown: bool) -> list[tuple[str, Path]]:
    is_grown = load("make_corpus").is_grown
    return [
        (name, path)
        for name in HARNESSES
        for path in sorted((FUZZ / "corpus" / name).glob("*"))
        if is_grown(path) == grown
    ]


SEEDS = _corpus(grown=False)
"""The labelled seeds `make_corpus.py` writes."""
GROWN = _corpus(grown=True)
"""The inputs the campaigns added (named by their SHA-1, as libFuzzer names them)."""


@pytest.mark.parametrize(("harness", "seed"), SEEDS, ids=[f"{h}/{p.name}" for h, p in SEEDS])
def test_seed_passes_the_oracles(harness: str, seed: Path) -> None:
    load(harness).TestOneInput(seed.read_bytes())


@pytest.mark.parametrize("harness", HARNESSES)
def test_grown_corpus_passes_the_oracles(harness: str) -> None:
    """One test per harness rather than per input: the grown corpora hold hundreds of inputs."""
    run = load(harness).TestOneInput
    for name, path in GROWN:
        if name == harness:
            data = path.read_bytes()
            assert hashlib.sha1(data).hexdigest() == path.name, f"{path}: content does not match its name"
            try:
                run(data)
            except Exception as error:
                raise AssertionError(f"{path} fails: {error!r}") from error


def test_every_harness_has_seeds() -> None:
    assert HARNESSES == [
        "fuzz_connection",
        "fuzz_deflate",
        "fuzz_frames",
        "fuzz_handshake_client",
        "fuzz_handshake_server",
        "fuzz_proxy",
        "fuzz_registrar",
        "fuzz_sip",
        "fuzz_sipmsg",
        "fuzz_x509",
    ]
    for harness in HARNESSES:
        assert len([s for h, s in SEEDS if h == harness]) >= 5, harness


def test_committed_corpus_is_what_make_corpus_builds() -> None:
    """Each seed still reaches its target (a harness whose input layout changed fails here), and the
    committed labelled files are the ones `python fuzz/make_corpus.py` writes."""
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
        "fuzz_sipmsg": make_corpus.sipmsg_seeds(),
        "fuzz_proxy": make_corpus.proxy_seeds(),
        "fuzz_registrar": make_corpus.checked(
            "registrar", load("fuzz_registrar").run, make_corpus.registrar_seeds()
        ),
        "fuzz_deflate": make_corpus.checked(
            "deflate", load("fuzz_deflate").run, load("make_deflate_corpus").deflate_seeds()
        ),
    }
    for harness, seeds in built.items():
        committed = {path.name.rsplit("-", 1)[0]: path.read_bytes() for h, path in SEEDS if h == harness}
        assert committed == seeds, f"{harness}: run python fuzz/make_corpus.py"


def test_sipmsg_seeds_parse() -> None:
    """The SIP parser's seeds are messages the browsers send: each parses (the harness also
    accepts inputs that do not)."""
    fuzz_sipmsg = load("fuzz_sipmsg")
    for label, data in load("make_corpus").sipmsg_seeds().items():
        assert fuzz_sipmsg.run(data) is not None or label in (
            "unterminated_contact",
            "salvaged_control_in_uri",
        ), label
