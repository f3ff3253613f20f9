"""The public API: one list per package (its ``__init__.pyi``), every name importable and
documented; and README's two set-up commands are what CI runs."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages")


def stub_exports(package: str) -> dict[str, str]:
    """Each name the stub re-exports (``from .module import Name as Name``): its module."""
    stub = ast.parse((ROOT / package / "__init__.pyi").read_text())
    names = {}
    for node in stub.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                assert alias.asname == alias.name, f"{alias.name} is not re-exported"
                names[alias.name] = f"{package}.{node.module}"
    return names


def is_documented(name: str, value: object, module: str) -> bool:
    """A docstring of its own, or (a name re-exported from a library, such as anyio's
    stream ends) described in the docstring of our module that exports it."""
    if getattr(value, "__module__", "").startswith(PACKAGES):
        doc = inspect.getdoc(value)
        return bool(doc) and len(doc.split()) >= 3
    return f"{name}`" in (importlib.import_module(module).__doc__ or "")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_imports_and_is_documented(package: str) -> None:
    module = importlib.import_module(package)
    exports = stub_exports(package)
    assert exports, "the stub lists no names"
    assert sorted(module.__all__) == sorted(exports)
    assert sorted(dir(module)) == sorted(exports)
    for name, source in exports.items():
        value = getattr(module, name)
        assert is_documented(name, value, source), f"{package}.{name} is not documented"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_is_marked_typed(package: str) -> None:
    assert (ROOT / package / "py.typed").is_file()


def test_an_unknown_name_is_an_attribute_error() -> None:
    import pipeline

    with pytest.raises(AttributeError):
        _ = pipeline.NoSuchThing  # type: ignore[attr-defined]


def test_readme_set_up_commands_are_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(commands) == 2
    install_and_run, test = commands
    assert "[test]" not in install_and_run and "pipeline run" in install_and_run
    assert "[test]" in test and "pytest" in test
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == [install_and_run, test]


def test_the_framework_imports_nothing_of_the_job_but_at_its_entry() -> None:
    """``pipeline/`` knows no k-NN: only ``python -m pipeline``'s entry reaches ``stages``."""
    reaching = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            reaching += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "stages"]
    assert reaching == []
