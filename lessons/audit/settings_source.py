"""Where a setting is written: file and line in the project's settings, read with ``ast``.

The values come from the settings child (what Django really loaded); this module only
points at the line to change.  It reads the settings module and the modules it
star-imports (``from .base import *``), the derived module first, and notes whether a line
sits under ``if DEBUG:`` (so a profiler added only in development is not reported).
Nothing here is executed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SettingsSource", "Place"]


@dataclass(frozen=True)
class Place:
    """One line of a settings file, and whether it only runs when DEBUG is true."""

    where: str
    debug_only: bool = False


@dataclass(frozen=True)
class _Write:
    """A statement that writes setting ``name``: ``NAME = ...``, ``NAME += ...``,
    ``NAME.append(...)``, or ``NAME["k"]... = ...`` (``keys``)."""

    name: str
    node: ast.AST          # the value written (or the call)
    line: int
    keys: tuple[str, ...]
    debug_only: bool


@dataclass
class SettingsSource:
    """The settings files of one settings module, parsed."""

    root: Path
    files: list[tuple[str, list[_Write]]] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path, module: str, settings_file: str | None) -> SettingsSource:
        source = cls(root=root)
        path = _resolve(root, settings_file, module)
        seen: set[Path] = set()
        if path is not None:
            source._add(path, module, seen)
        return source

    def _add(self, path: Path, module: str, seen: set[Path]) -> None:
        if path in seen:
            return
        seen.add(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            return
        self.files.append((_shown(self.root, path), list(_writes(tree.body, False))))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for base in reversed(_star_imports(tree, package)):
            found = _resolve(self.root, None, base)
            if found is not None:
                self._add(found, base, seen)

    def _writes(self, name: str) -> Iterator[tuple[str, _Write]]:
        """Writes of ``name``, the last one (the one in effect) first."""
        for shown, writes in self.files:
            for w in reversed(writes):
                if w.name == name:
                    yield shown, w

    def where(self, name: str) -> str:
        """``file:line`` of the write in effect, or ``setting NAME`` when none is found."""
        for shown, w in self._writes(name):
            return f"{shown}:{w.line}"
        return f"setting {name}"

    def is_literal(self, name: str) -> bool | None:
        """Whether the write in effect of ``name`` is a constant (``DEBUG = True``) rather
        than computed (``DEBUG = env("DEBUG")``); None when no write is found."""
        for _, w in self._writes(name):
            return isinstance(w.node, ast.Constant)
        return None

    def where_key(self, name: str, *keys: str) -> str:
        """The line of ``NAME[k1][k2]...`` in a dict literal (or a subscript assignment);
        the deepest key found when the full path is not written out."""
        best: tuple[int, str] | None = None
        for shown, w in self._writes(name):
            if w.keys != keys[:len(w.keys)]:
                continue
            depth, line = _descend(w.node, keys[len(w.keys):])
            depth += len(w.keys)
            if depth == len(keys):
                return f"{shown}:{line or w.line}"
            if best is None or depth > best[0]:
                best = (depth, f"{shown}:{line or w.line}")
        return best[1] if best else self.where(name)

    def where_item(self, name: str, value: str) -> Place:
        """The line where the string ``value`` is put into setting ``name`` (a list entry,
        an ``append``), and whether that line runs only under ``if DEBUG:``."""
        for shown, w in self._writes(name):
            for node in ast.walk(w.node):
                if isinstance(node, ast.Constant) and node.value == value:
                    return Place(f"{shown}:{node.lineno}", w.debug_only)
        return Place(self.where(name))


def _shown(root: Path, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _resolve(root: Path, settings_file: str | None, module: str) -> Path | None:
    """The file of ``module`` under ``root`` (or the child's ``settings_file``)."""
    if settings_file:
        p = Path(settings_file)
        p = p if p.is_absolute() else root / p
        if p.is_file():
            return p
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _star_imports(tree: ast.Module, package: str) -> list[str]:
    """Modules star-imported at the top level, as absolute dotted names (``package``: the
    one relative imports start from: the module's own for an ``__init__.py``)."""
    found = []
    for node in _module_level(tree.body):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[:len(parts) - (node.level - 1)] if node.level > 1 else parts
                found.append(".".join([*parts, *([node.module] if node.module else [])]))
            elif node.module:
                found.append(node.module)
    return found


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import, inside if/try/with blocks too (``try: from .local import *``)."""
    for stmt in body:
        if isinstance(stmt, (ast.If, ast.Try, ast.With)):
            for block in (stmt.body, *(h.body for h in getattr(stmt, "handlers", [])),
                          getattr(stmt, "orelse", []), getattr(stmt, "finalbody", [])):
                yield from _module_level(block)
        else:
            yield stmt


def _is_debug_test(test: ast.expr) -> bool | None:
    """True for ``if DEBUG``-like tests, False for ``if not DEBUG``, None otherwise."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _is_debug_test(test.operand)
        return None if inner is None else not inner
    names = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(test) if isinstance(n, ast.Attribute)}
    return True if "DEBUG" in names else None


def _writes(body: list[ast.stmt], debug_only: bool) -> Iterator[_Write]:
    """Every write of an UPPERCASE name at module level (into if/try/with, not defs)."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            debug = _is_debug_test(stmt.test)
            yield from _writes(stmt.body, debug_only or debug is True)
            yield from _writes(stmt.orelse, debug_only or debug is False)
        elif isinstance(stmt, (ast.Try, ast.With)):
            for block in (stmt.body, *(h.body for h in getattr(stmt, "handlers", [])),
                          getattr(stmt, "orelse", []), getattr(stmt, "finalbody", [])):
                yield from _writes(block, debug_only)
        else:
            yield from _statement_writes(stmt, debug_only)


def _statement_writes(stmt: ast.stmt, debug_only: bool) -> Iterator[_Write]:
    targets: list[ast.expr] = []
    value: ast.AST | None = None
    if isinstance(stmt, ast.Assign):
        targets, value = stmt.targets, stmt.value
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)) and stmt.value is not None:
        targets, value = [stmt.target], stmt.value
    elif (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
          and isinstance(stmt.value.func, ast.Attribute)
          and isinstance(stmt.value.func.value, ast.Name)):
        targets, value = [stmt.value.func.value], stmt.value
    for target in targets:
        name, keys = _target(target)
        if name and name.isupper() and value is not None:
            yield _Write(name, value, stmt.lineno, keys, debug_only)


def _target(node: ast.expr) -> tuple[str | None, tuple[str, ...]]:
    """``NAME`` or ``NAME["a"]["b"]`` -> (NAME, ("a", "b"))."""
    keys: list[str] = []
    while isinstance(node, ast.Subscript):
        if not (isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            return None, ()
        keys.insert(0, node.slice.value)
        node = node.value
    return (node.id, tuple(keys)) if isinstance(node, ast.Name) else (None, ())


def _descend(node: ast.AST, keys: tuple[str, ...]) -> tuple[int, int | None]:
    """How many of ``keys`` a dict literal spells out, and the line of the last found
    (``dict(a=...)`` calls count as dicts)."""
    depth, line = 0, None
    for key in keys:
        found = None
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == key:
                    found = (k.lineno, v)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            for kw in node.keywords:
                if kw.arg == key:
                    found = (kw.value.lineno, kw.value)
        if found is None:
            break
        line, node = found
        depth += 1
    return depth, line
