"""How the project's modules import each other: each imports first in a fresh interpreter, no cycle, and none
imports a module on a floor above its own (docs/design.md).

The graph is built with the standard library's `ast` and `graphlib` rather than import-linter: its graph records
the imports a module writes, while the cycle that once broke `import checks.orders` went through one it does not
write: importing `assets.orders.cleaning` first runs `assets/orders/__init__.py`, which imported `checks.orders`."""

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipelines", "assets", "checks", "reports")


def project_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted name -> file of every module of the packages under root."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _written_imports(tree: ast.Module):
    """Names a module imports when it runs: `if TYPE_CHECKING:` blocks never run."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)  # `from package import module`


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it makes Python import: those it names and their packages (importing
    `a.b.c` runs `a/__init__` and `a/b/__init__` first), except its own packages, which are loaded before it."""
    graph = {}
    for module, path in modules.items():
        named = set(_written_imports(ast.parse(path.read_text(), str(path))))
        imported = named.union(*map(_ancestors, named)) & modules.keys()
        graph[module] = imported - _ancestors(module) - {module}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return error.args[1]
    return None


def test_no_import_cycle_among_the_project_modules():
    found = cycle(import_graph(project_modules(ROOT)))
    assert found is None, "import cycle: " + " -> ".join(found)


# The shape of the cycle that broke `import checks.orders`: checks/orders imports assets/orders/cleaning, whose
# package assets/orders imports checks/orders; cleaning itself imports nothing of the project.
CYCLE = {
    "assets/__init__.py": "",
    "assets/orders/__init__.py": "from checks.orders import BLOCKING\n",
    "assets/orders/cleaning.py": "import polars\nparse = polars.col\n",
    "checks/__init__.py": "",
    "checks/orders.py": "from assets.orders.cleaning import parse\nBLOCKING = ()\n",
}


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    write_package(tmp_path, CYCLE)
    graph = import_graph(project_modules(tmp_path, ("assets", "checks")))
    assert set(cycle(graph)) == {"assets.orders", "checks.orders"}
    # behind TYPE_CHECKING (as checks.orders now imports cleaning's types) the import never runs: no cycle
    (tmp_path / "checks/orders.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from assets.orders.cleaning import parse\n"
    )
    assert cycle(import_graph(project_modules(tmp_path, ("assets", "checks")))) is None


# Each project module imported first, each in a child forked from an interpreter that has imported the third-party
# packages the project uses and none of its own modules: as a fresh interpreter would, for the project's modules,
# without paying dagster's import once per module.
FORKING_IMPORTER = """
import importlib, os, sys
third_party, modules, packages = sys.argv[1].split(), sys.argv[2].split(), set(sys.argv[3].split())
for name in third_party:
    importlib.import_module(name)
assert not packages & {name.split(".")[0] for name in sys.modules}, "a project module was imported before the forks"
running = 0
for module in modules:
    if running == 2:  # two children at a time
        os.wait()
        running -= 1
    if os.fork() == 0:
        try:
            importlib.import_module(module)
        except BaseException as error:
            print(module, type(error).__name__, error, flush=True)
            os._exit(1)
        os._exit(0)
    running += 1
for _ in range(running):
    os.wait()
"""


def third_party_imports(modules: dict[str, Path]) -> set[str]:
    """The top-level packages outside the standard library that the project's modules import."""
    names = set()
    for path in modules.values():
        names |= {name.split(".")[0] for name in _written_imports(ast.parse(path.read_text()))}
    return names - set(PACKAGES) - set(sys.stdlib_module_names)


def test_every_module_imports_first():
    modules = project_modules(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", FORKING_IMPORTER, " ".join(sorted(third_party_imports(modules))), " ".join(modules),
         " ".join(PACKAGES)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "modules that fail when imported first:\n" + done.stdout


def test_the_forking_importer_sees_a_module_that_fails_first(tmp_path):
    # the broken cycle itself, run: checks.orders imported first fails, assets.orders imported first works
    write_package(tmp_path, CYCLE)
    done = subprocess.run(
        [sys.executable, "-c", FORKING_IMPORTER, "polars", "assets.orders checks.orders", "assets checks"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["checks.orders"], done.stdout
    assert "cannot import name 'BLOCKING' from partially initialized module" in done.stdout


# The floors of docs/design.md ("Layers"): a module imports from its own floor or below, never above.
ROOF = {"pipelines.definitions", "pipelines.operations", "pipelines.cli"}


def floor(module: str) -> int:
    """0: the foundation (pipelines/ but the roof), 1: logic and wiring (assets/, checks/, reports/), 2: the roof."""
    if module in ROOF:
        return 2
    return 0 if module.split(".")[0] == "pipelines" else 1


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((module, name) for module, names in graph.items() for name in names if floor(name) > floor(module))


def test_no_module_imports_one_on_a_floor_above_it():
    assert upward_imports(import_graph(project_modules(ROOT))) == []
    # and the test sees one: the foundation's settings importing a stage's logic, or a stage the CLI
    planted = {"pipelines.settings": {"assets.customers.rfm"}, "assets.orders": {"pipelines.cli"},
               "pipelines.cli": {"assets.orders", "pipelines.settings"}}  # fmt: skip
    expected = [("assets.orders", "pipelines.cli"), ("pipelines.settings", "assets.customers.rfm")]
    assert upward_imports(planted) == expected
