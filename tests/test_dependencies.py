"""Every third-party package the code imports is declared in pyproject.toml, with a range that has an upper bound."""

import ast
import importlib.metadata
import re
import sys
import tomllib

from tests.test_layers import PACKAGES, ROOT, _written_imports

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> dict[str, str]:
    """Distribution -> its version range, of the dependencies and the given extras."""
    project = PYPROJECT["project"]
    requirements = project["dependencies"] + [r for extra in extras for r in project["optional-dependencies"][extra]]
    found = (re.match(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?\s*(.*)", r).group(1, 3) for r in requirements)
    return {_canonical(name): versions for name, versions in found if _canonical(name) != "regulars"}


def imported(*folders: str) -> set[str]:
    """The distributions of the third-party packages the folders' modules import."""
    distributions = importlib.metadata.packages_distributions()
    names, local = set(), set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            local.add(path.stem)
            names |= {name.split(".")[0] for name in _written_imports(ast.parse(path.read_text()))}
    names -= set(sys.stdlib_module_names) | set(PACKAGES) | {"tests", "bench"} | local
    # a package not installed here (lifetimes, for the benchmarks) is named as its distribution is
    return {_canonical(distributions.get(name, [name])[0]) for name in names}


def test_every_imported_package_is_declared_with_a_range():
    for folders, extras in [(PACKAGES, ()), (("tests",), ("test",)), (("bench",), ("bench",))]:
        ranges = declared(*extras)
        missing = imported(*folders) - ranges.keys()
        assert not missing, f"{', '.join(folders)} import {sorted(missing)}, which pyproject.toml does not declare"
    unbounded = {name: versions for name, versions in declared("test", "bench", "deploy").items()
                 if "<" not in versions and "==" not in versions}  # fmt: skip
    assert not unbounded, f"declared without an upper bound: {unbounded}"
