"""Notebooks use only ``lessons``' public names (``lessons.__all__``), and each resolves.

Every other module of ``lessons`` is internal (the package's docstring says so): a
notebook that imported one would tie the lessons to the package's inner layout.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import lessons

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _lessons_imports(source: str) -> list[tuple[str, str | None]]:
    """(module, name) for every ``import lessons...`` (name None), ``from lessons...
    import name`` and ``lessons.name`` in ``source``; IPython's magics and shell lines are left out."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.split(".")[0] == "lessons"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lessons":
            found += [(node.module, a.name) for a in node.names]
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "lessons"):  # lessons.quick()
            found.append(("lessons", node.attr))
    return found


def test_the_notebooks_are_found() -> None:
    assert len(NOTEBOOKS) == 11


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_imports_only_public_names(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    imports = [imp for cell in nb.cells if cell.cell_type == "code" for imp in _lessons_imports(cell.source)]
    assert imports, f"{path.name} does not import lessons"
    internal = [f"{module}.{name}" if name else module for module, name in imports
                if module != "lessons" or (name is not None and name not in lessons.__all__)]
    assert internal == [], f"{path.name} imports what lessons.__all__ does not export"


def test_the_check_sees_an_internal_import() -> None:
    source = ("import lessons\nfrom lessons import Lab\nfrom lessons.results import acompare\n"
              "import lessons.probes\n%time x = 1\nlessons.load.arun()")
    assert sorted(_lessons_imports(source), key=str) == sorted(
        [("lessons", None), ("lessons", "Lab"), ("lessons.results", "acompare"), ("lessons.probes", None),
         ("lessons", "load")], key=str)


@pytest.mark.parametrize("name", lessons.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(lessons, name) is not None


def test_public_names_resolve_in_a_fresh_interpreter() -> None:
    """``from lessons import X`` for every X, before anything else imported a submodule."""
    names = ", ".join(lessons.__all__)
    done = subprocess.run([sys.executable, "-c", f"from lessons import {names}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        lessons.nothing_here  # noqa: B018
    assert importlib.import_module("lessons").__all__ == sorted(lessons.__all__)
