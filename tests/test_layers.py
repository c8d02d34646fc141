"""The layers stay layers: each module imports only from the layers below it.

From the bottom up: the core (queue semantics, exceptions, statistics, serializers, URL
helpers), ``backends/`` (one store per module, behind ``backends/_base.py``), the durable
layer and the URL dispatch above them (``_durable/``, ``_open.py``), and at the top the
programs that use the library: ``cli/``, ``dashboard/``, ``bench/`` and ``examples/``.
ARCHITECTURE.md draws the same picture.

The rules are read off the source with :mod:`ast` (every ``import`` and ``from ... import``,
relative ones resolved, inside functions too), so a lazy import cannot slip past them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import conveyor

PACKAGE = Path(conveyor.__file__).parent
PROGRAMS = ("conveyor.cli", "conveyor.dashboard", "conveyor.bench", "conveyor.examples")
# Imported by the programs and by users' own programs, never by the core: it needs an extra.
EXPORTERS = ("conveyor.metrics",)
# ``python -m conveyor`` is the command line's entry point, a program like cli/.
ENTRY_POINTS = ("conveyor.__main__",)
ABOVE_THE_BACKENDS = (
    "conveyor._open",
    "conveyor._stores",
    "conveyor._durable",
    "conveyor._work",
    *PROGRAMS,
    *EXPORTERS,
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Return the absolute names of every module that *path* imports."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # "from . import _open" imports the module conveyor._open.
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def _violations(paths: list[Path], banned: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{_module_name(path)} imports {name}"
        for path in paths
        for name in _imports(path)
        if any(name == ban or name.startswith(ban + ".") for ban in banned)
    )


def _modules(*, under: str = "", skip: tuple[str, ...] = ()) -> list[Path]:
    paths = sorted((PACKAGE / under).rglob("*.py"))
    return [p for p in paths if not any(_module_name(p).startswith(s) for s in skip)]


def test_the_rules_see_the_imports_they_judge() -> None:
    # A checker that finds nothing would pass every rule: show that it sees a relative
    # import, a lazy one, and "from . import name".
    cli = _imports(PACKAGE / "cli" / "__init__.py")
    assert "conveyor.examples" in cli or "conveyor.examples._stage" in cli
    assert "conveyor.backends._base" in _imports(PACKAGE / "backends" / "sqlite" / "_store.py")
    assert "conveyor._exceptions" in _imports(PACKAGE / "_queue.py")


def test_the_core_never_imports_the_programs() -> None:
    assert _violations(_modules(skip=PROGRAMS + ENTRY_POINTS), PROGRAMS) == []


def test_only_the_programs_import_the_metrics() -> None:
    core = _modules(skip=PROGRAMS + ENTRY_POINTS + EXPORTERS)
    assert _violations(core, EXPORTERS) == []


STORE_MODULES = sorted(
    str(path.relative_to(PACKAGE / "backends")) for path in (PACKAGE / "backends").rglob("*.py")
)


@pytest.mark.parametrize("store_module", STORE_MODULES)
def test_backends_never_import_the_layers_above_them(store_module: str) -> None:
    path = PACKAGE / "backends" / store_module
    assert _violations([path], ABOVE_THE_BACKENDS) == []


def test_the_library_never_imports_optional_drivers_at_import_time() -> None:
    # ``import conveyor`` must work with the standard library alone: the Redis driver,
    # the terminal library, the dashboard's web stack, the benchmark contenders and its
    # plotting library are extras, imported lazily.
    import subprocess
    import sys

    code = (
        "import sys, conveyor, conveyor.backends.sqlite\n"
        "extras = {'redis', 'rich', 'uvloop', 'janus', 'culsans', 'aiologic', 'saq',"
        " 'prometheus_client', 'matplotlib', 'numpy'}\n"
        "print(sorted(extras & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_command_line_imports_the_web_stack_only_to_serve() -> None:
    # ``conveyor --help`` (and every other command) parses without Starlette or uvicorn.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from conveyor.cli import build_parser\n"
        "build_parser().parse_args(['dashboard', 'sqlite:///x.db'])\n"
        "print(sorted({'starlette', 'uvicorn', 'conveyor.dashboard'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
