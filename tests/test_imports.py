"""The package's shape: every module of ``lessons`` imports on its own in a fresh
interpreter, no import cycle (read statically with ``ast``), no module over 400 lines and
no function over 80."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

# Modules and functions allowed over the limits: none today.  An entry names one still too
# long ("lessons/x.py", "lessons/x.py::function"); the last test below fails once it fits.
TOO_LONG_MODULES: set[str] = set()
TOO_LONG_FUNCTIONS: set[str] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(LESSONS.rglob("*.py")):
        parts = list(path.relative_to(LESSONS.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path, *, module_level: bool) -> set[str]:
    """The ``lessons`` modules ``path`` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in _at_import_time(tree) if module_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in MODULES}


def _at_import_time(node: ast.AST):
    """The nodes that run when the module is imported: not the bodies of functions, nor
    ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from (n for stmt in child.orelse for n in [stmt, *_at_import_time(stmt)])
            continue
        yield child
        yield from _at_import_time(child)


def _graph(*, module_level: bool, within: str = "lessons") -> dict[str, set[str]]:
    def inside(m: str) -> bool:
        return m == within or m.startswith(within + ".")

    return {m: {d for d in _imports(p, module_level=module_level) if inside(d) and d != m}
            for m, p in MODULES.items() if inside(m)}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge found by a depth-first walk (enough to show each)."""
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [])
    return found


# lessons/audit/inject/ is not a package: the audit puts it first on a learner's project's
# path, where its modules run in the project's interpreter with the audit's environment.
@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("lessons.audit.inject.")))
def test_every_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    out = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=LESSONS.parent,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_measure_package_has_no_import_cycle_even_through_lazy_imports() -> None:
    graph = _graph(module_level=False, within="lessons.measure")
    assert "lessons.measure.launch" in graph and graph["lessons.measure.launch"]
    assert _cycles(graph) == []


def test_the_services_package_has_no_import_cycle_even_through_lazy_imports() -> None:
    graph = _graph(module_level=False, within="lessons.services")
    assert graph["lessons.services"] >= {"lessons.services.postgres", "lessons.services.valkey"}
    assert _cycles(graph) == []


def test_lessons_has_no_import_cycle_at_module_level() -> None:
    assert _cycles(_graph(module_level=True)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _sizes(paths=None) -> tuple[dict[str, int], dict[str, int]]:
    modules, functions = {}, {}
    for path in MODULES.values() if paths is None else paths:
        name = path.relative_to(LESSONS.parent).as_posix()
        text = path.read_text()
        modules[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[f"{name}::{node.name}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_no_module_over_400_lines_and_no_function_over_80() -> None:
    modules, functions = _sizes()
    long_modules = {m for m, n in modules.items() if n > MAX_MODULE_LINES}
    long_functions = {f for f, n in functions.items() if n > MAX_FUNCTION_LINES}
    assert long_modules <= TOO_LONG_MODULES, {m: modules[m] for m in long_modules - TOO_LONG_MODULES}
    assert long_functions <= TOO_LONG_FUNCTIONS, {
        f: functions[f] for f in long_functions - TOO_LONG_FUNCTIONS}
    assert not any(m.startswith("lessons/measure/") for m in TOO_LONG_MODULES | TOO_LONG_FUNCTIONS)


def test_no_lab_project_module_over_400_lines_and_no_function_over_80() -> None:
    modules, functions = _sizes(sorted((LESSONS.parent / "lab_project").rglob("*.py")))
    assert len(modules) > 20
    assert {m: n for m, n in modules.items() if n > MAX_MODULE_LINES} == {}
    assert {f: n for f, n in functions.items() if n > MAX_FUNCTION_LINES} == {}


def test_the_allow_lists_name_only_what_is_still_too_long() -> None:
    """An entry that now fits (or is gone) must leave the allow-list."""
    modules, functions = _sizes()
    assert {m for m in TOO_LONG_MODULES if modules.get(m, 0) <= MAX_MODULE_LINES} == set()
    assert {f for f in TOO_LONG_FUNCTIONS if functions.get(f, 0) <= MAX_FUNCTION_LINES} == set()
