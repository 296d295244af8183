"""Notebooks use only ``lessons``' public names (``lessons.__all__``), and each resolves.

Every other module of ``lessons`` is internal (the package's docstring says so): a
notebook that imported one would tie the lessons to the package's inner layout.
"""

from __future__ import annotations

import ast
import importlib
import re
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
    assert len(NOTEBOOKS) == 12


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


# The one quick switch ###################################################################
# A notebook's parameters cell sets QUICK (lessons.quick(): LAB_QUICK=1 unless the learner
# writes True or False there) and the next cell hands it to lessons.set_quick, which every
# size reads: the notebook's by_speed(...), the load runs' default durations inside
# lessons, and the notebook's record.


def _code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def _parameters_and_setup(path: Path) -> tuple[str, str]:
    """The source of the parameters cell and of the code cell after it."""
    cells = _code_cells(path)
    at = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(at) == 1, f"{path.name}: one parameters cell"
    return cells[at[0]].source, cells[at[0] + 1].source


def _is_call(node: ast.AST, name: str) -> bool:
    """``name(...)`` or ``lessons.name(...)``."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == name) or (
        isinstance(func, ast.Attribute) and func.attr == name and isinstance(func.value, ast.Name)
        and func.value.id == "lessons")


def _literal_by_speeds(path: Path) -> list[tuple[str, object, object]]:
    """(source, full, quick) for every by_speed(...) call of the notebook whose two
    arguments are literals (the others take a value computed from another size)."""
    found = []
    for cell in _code_cells(path):
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if _is_call(node, "by_speed"):
                args = [*node.args, *(k.value for k in node.keywords)]
                try:
                    full, quick = (ast.literal_eval(a) for a in args)
                except ValueError:
                    continue
                found.append((ast.unparse(node), full, quick))
    return found


@pytest.fixture
def switch(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No set_quick from an earlier test; the switch goes back to LAB_QUICK afterwards."""
    from lessons import config

    monkeypatch.setattr(config, "_quick", None)
    return monkeypatch


@pytest.mark.parametrize("env", ["1", "0"], ids=["LAB_QUICK=1", "LAB_QUICK=0"])
def test_set_quick_decides_every_size_whatever_lab_quick_says(switch, tmp_path, env) -> None:
    from lessons.measure import spec

    switch.setenv("LAB_QUICK", env)
    switch.setenv("LAB_RESULTS", str(tmp_path))
    assert lessons.quick() is (env == "1")  # the environment's default
    learner = env != "1"  # the learner's choice, against it
    assert lessons.set_quick(learner) is learner
    assert lessons.quick() is learner
    assert lessons.by_speed("full", quick="short") == ("short" if learner else "full")
    assert spec.by_speed(None, 3.0, 1.0) == (1.0 if learner else 3.0)  # a load run's default duration
    assert spec.by_speed(2.5, 3.0, 1.0) == 2.5  # a duration given is kept
    assert lessons.Notebook("quick-switch-test").data["quick"] is learner
    assert lessons.set_quick(None) is (env == "1")  # None: LAB_QUICK decides again


@pytest.mark.parametrize("value", ["False", "1", 0, 1])
def test_set_quick_takes_only_true_or_false(switch, value) -> None:
    """``QUICK = "False"`` would otherwise be a quick run (a non-empty string is true)."""
    from lessons import config

    switch.setenv("LAB_QUICK", "0")
    with pytest.raises(TypeError, match="QUICK is True or False"):
        lessons.set_quick(value)
    assert config._quick is None and lessons.quick() is False  # unchanged: LAB_QUICK decides


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.parametrize("learner", [True, False], ids=["QUICK=True", "QUICK=False"])
def test_the_learners_one_change_reaches_every_size(switch, path, learner) -> None:
    """The parameters cell edited as a learner would (``QUICK = True``, with LAB_QUICK
    saying the opposite), then the next cell's ``lessons.set_quick(QUICK)``: every
    by_speed of the notebook answers the learner's way."""
    switch.setenv("LAB_QUICK", "0" if learner else "1")
    parameters, setup = _parameters_and_setup(path)
    edited, n = re.subn(r"^QUICK = .*$", f"QUICK = {learner}", parameters, flags=re.M)
    assert n == 1, f"{path.name}: the parameters cell sets QUICK on one line"
    namespace: dict = {}
    exec(edited, namespace)  # noqa: S102 - the notebook's own cell
    calls = [s for s in ast.parse(setup).body if isinstance(s, ast.Expr) and _is_call(s.value, "set_quick")]
    assert len(calls) == 1, f"{path.name}: the cell after the parameters cell calls lessons.set_quick(QUICK)"
    exec(compile(ast.Module(calls, []), path.name, "exec"), namespace)  # noqa: S102
    sizes = _literal_by_speeds(path)
    assert sizes, f"{path.name}: no by_speed(...) to check"
    for source, full, quick in sizes:
        assert eval(source, {"by_speed": lessons.by_speed}) == (quick if learner else full), source  # noqa: S307
    assert lessons.quick() is learner


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nothing_else_in_a_notebook_decides_the_speed(path) -> None:
    """QUICK comes from the parameters cell only; set_quick(QUICK) runs before the lab,
    the record and every size; no cell reads LAB_QUICK, calls quick() again, or writes
    ``x if QUICK else y`` (``by_speed(full, quick=...)`` does that)."""
    parameters, setup = _parameters_and_setup(path)
    assert re.search(r"^QUICK = lessons\.quick\(\)", parameters, flags=re.M), path.name
    body = ast.parse(setup).body
    first = next(i for i, s in enumerate(body) if isinstance(s, ast.Expr) and _is_call(s.value, "set_quick"))
    assert ast.unparse(body[first]) == "lessons.set_quick(QUICK)"
    assert all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body[:first]), \
        f"{path.name}: set_quick(QUICK) comes right after the imports"
    set_quicks = 0
    for cell in _code_cells(path):
        if cell.source == parameters:
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            assert not _is_call(node, "quick"), f"{path.name}: {ast.unparse(node)}"
            set_quicks += _is_call(node, "set_quick")
            assert not (isinstance(node, ast.Constant) and "LAB_QUICK" in str(node.value)), path.name
            if isinstance(node, ast.IfExp):
                names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
                assert "QUICK" not in names, f"{path.name}: {ast.unparse(node)}: use by_speed"
    assert set_quicks == 1, f"{path.name}: set_quick is called once, after the parameters cell"
