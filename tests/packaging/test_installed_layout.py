"""The wheel installs `sansio_wss` with `sansio_wss.adapters` inside it, and no top-level `adapters`."""

from __future__ import annotations

import importlib.util
import pathlib

import sansio_wss
import sansio_wss.adapters


def test_no_top_level_adapters_package() -> None:
    assert importlib.util.find_spec("adapters") is None


def test_adapters_live_inside_the_package() -> None:
    package = pathlib.Path(sansio_wss.__file__).parent
    assert pathlib.Path(sansio_wss.adapters.__file__).parent == package / "adapters"


def test_typed_marker_is_installed() -> None:
    assert (pathlib.Path(sansio_wss.__file__).parent / "py.typed").is_file()


def test_public_names_are_exported_and_documented() -> None:
    for name in sansio_wss.__all__:
        obj = getattr(sansio_wss, name)
        if name not in ("__version__", "Event", "Headers"):
            assert obj.__doc__, name
