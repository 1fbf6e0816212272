"""The core is sans-IO: no module of `sansio_wss` itself imports sockets, TLS, event loops,
threads or clocks, nor the adapters; importing it loads none of them."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import sansio_wss

IO_MODULES = frozenset(
    ("socket", "ssl", "select", "selectors", "asyncio", "trio", "threading", "time", "subprocess", "signal")
)
CORE = pathlib.Path(sansio_wss.__file__).parent
# `python -m sansio_wss` is the command line, not the core: it may start the adapters.
LAUNCHER = CORE / "__main__.py"


def imported_modules(path: pathlib.Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved in the package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "sansio_wss" if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def core_modules() -> list[pathlib.Path]:
    return sorted(path for path in CORE.glob("*.py") if path != LAUNCHER)


def test_core_modules_import_no_io() -> None:
    assert len(core_modules()) >= 10
    for path in core_modules():
        imported = imported_modules(path)
        roots = {name.split(".")[0] for name in imported}
        assert not roots & IO_MODULES, f"{path.name} imports {sorted(roots & IO_MODULES)}"
        adapters = sorted(name for name in imported if name.startswith("sansio_wss.adapters"))
        assert not adapters, f"{path.name} imports {adapters}"


def test_the_scan_sees_imports(tmp_path: pathlib.Path) -> None:
    """The check above can fail: the scanner finds every kind of import."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import socket\nfrom time import monotonic\nfrom .adapters import trio\nimport os.path as p\n"
    )
    assert {"socket", "time", "sansio_wss.adapters", "os.path"} <= imported_modules(probe)


def test_importing_the_core_loads_no_io_module() -> None:
    code = (
        "import sys; before = set(sys.modules); import sansio_wss; "
        f"print(sorted((set(sys.modules) - before) & set({sorted(IO_MODULES)!r})))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
