"""The server command a project is deployed with, found in its files (never run).

Looked for at the project root: ``Procfile`` lines, ``Dockerfile*`` ``CMD``/``ENTRYPOINT``
(exec and shell form), ``*.sh`` start scripts, and gunicorn's configuration file (the one a
command names with ``-c``, else ``./gunicorn.conf.py``, which gunicorn reads by default from
its working directory).  Values in a configuration file are Python expressions; the common
ones (``multiprocessing.cpu_count() * 2 + 1``, ``int(os.environ.get("WEB_CONCURRENCY", 4))``)
are evaluated for a given number of cores, with an environment variable's default.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Option", "ServerCommand", "find_commands", "parse_command", "parse_config"]

PROGRAMS = ("gunicorn", "uvicorn", "daphne", "hypercorn", "granian")
_FLAGS = {  # flag -> gunicorn setting name (the other servers' flags mapped onto the same names)
    "-w": "workers", "--workers": "workers", "-k": "worker_class", "--worker-class": "worker_class",
    "--threads": "threads", "--max-requests": "max_requests",
    "--max-requests-jitter": "max_requests_jitter", "-c": "config", "--config": "config",
    "-b": "bind", "--bind": "bind", "-t": "timeout", "--timeout": "timeout",
    "--keep-alive": "keepalive", "--interface": "interface",
}
_SWITCHES = {"--preload": "preload_app"}
_APP = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.()]*$")


@dataclass(frozen=True)
class Option:
    """One server setting as written, where, and (config files) the expression to evaluate."""

    text: str
    where: str
    node: ast.expr | None = None
    names: dict[str, ast.expr] = field(default_factory=dict, compare=False, hash=False)

    def value(self, cores: int) -> Any:
        """The value on a machine with ``cores`` cores (None when it cannot be known)."""
        if self.node is not None:
            return _evaluate(self.node, cores, self.names)
        return _cli_value(self.text)


@dataclass(frozen=True)
class ServerCommand:
    """A server started by one of the project's files."""

    program: str
    app: str | None
    where: str
    options: dict[str, Option] = field(default_factory=dict, compare=False, hash=False)
    text: str = ""

    def describe(self) -> str:
        return f"{self.program} {self.app}" if self.app else self.program

    def setting(self, name: str, cores: int) -> Any:
        opt = self.options.get(name)
        return None if opt is None else opt.value(cores)

    @property
    def worker_class(self) -> str:
        value = self.setting("worker_class", 1)
        return str(value) if value else ("gthread" if (self.setting("threads", 1) or 1) > 1 else "sync")

    @property
    def interface(self) -> str | None:
        """"asgi" or "wsgi": what kind of application this server runs."""
        if self.program == "gunicorn":
            wc = self.worker_class.lower()
            return "asgi" if ("uvicorn" in wc or wc == "asgi" or "asgi" in wc.rsplit(".", 1)[-1]) else "wsgi"
        iface = str(self.setting("interface", 1) or "")  # granian: asgi|wsgi; uvicorn: asgi3|asgi2|wsgi
        if iface == "wsgi" or iface.startswith("asgi"):
            return "wsgi" if iface == "wsgi" else "asgi"
        if self.app and re.search(r"(^|\.)wsgi:", self.app):
            return "wsgi" if self.program in ("granian", "hypercorn") else "asgi"
        return "asgi" if self.program != "runserver" else "wsgi"

    @property
    def asyncio_workers(self) -> bool:
        """Event-loop workers (one process serves many requests at once)."""
        return self.interface == "asgi" or self.worker_class in ("gevent", "eventlet", "tornado")

    def workers(self, cores: int) -> int | None:
        """Worker processes on a machine with ``cores`` cores (1 when not set: gunicorn's and
        uvicorn's default without WEB_CONCURRENCY; None when set from something unknown)."""
        if "workers" not in self.options:
            return 1
        value = self.setting("workers", cores)
        return value if isinstance(value, int) else None

    def workers_env(self) -> str | None:
        """The environment variable the worker count is read from (its default is what the
        audit evaluates), e.g. WEB_CONCURRENCY; None when the count is written out."""
        opt = self.options.get("workers")
        m = opt and re.search(r"""(?:environ(?:\.get)?\(\s*|environ\[\s*|getenv\(\s*)["'](\w+)|\$\{?(\w+)""", opt.text)
        return (m.group(1) or m.group(2)) if m else None

    def workers_formula(self) -> str:
        """``2 x cores + 1`` when the count follows the cores, else the count as written."""
        opt = self.options.get("workers")
        if opt is None:
            return "1 (the default)"
        one, two = opt.value(1), opt.value(2)
        if isinstance(one, int) and isinstance(two, int) and one != two:
            a, b = two - one, 2 * one - two
            return f"{a} x cores" + (f" + {b}" if b > 0 else f" - {-b}" if b < 0 else "")
        return opt.text


def _cli_value(text: str) -> Any:
    """A command-line value: ``${WEB_CONCURRENCY:-4}`` is its default; ``$X`` unknown."""
    m = re.fullmatch(r"\$\{\w+:?-([^}]*)\}", text)
    if m:
        text = m.group(1)
    elif text.startswith("$"):
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"true": True, "false": False}.get(text.lower(), text)


def _evaluate(node: ast.expr, cores: int, names: dict[str, ast.expr], depth: int = 0) -> Any:
    """A small, safe evaluator for configuration values (constants, arithmetic,
    cpu_count, int(), os.environ.get/os.getenv defaults, earlier names)."""
    if depth > 20:
        return None
    ev = lambda n: _evaluate(n, cores, names, depth + 1)  # noqa: E731
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return ev(names[node.id]) if node.id in names else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        v = ev(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else not v)
    if isinstance(node, ast.BinOp):
        a, b = ev(node.left), ev(node.right)
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
               ast.FloorDiv: lambda: a // b, ast.Div: lambda: a / b}
        if a is None or b is None or type(node.op) not in ops:
            return None
        try:
            return ops[type(node.op)]()
        except (TypeError, ZeroDivisionError):
            return None
    if isinstance(node, ast.Call):
        return _evaluate_call(node, cores, ev)
    return None


def _evaluate_call(node: ast.Call, cores: int, ev: Any) -> Any:
    func = ast.unparse(node.func)
    if func.endswith("cpu_count") or func in ("len", "os.process_cpu_count") and "affinity" in ast.unparse(node):
        return cores
    if func in ("int", "float", "bool", "str") and node.args:
        v = ev(node.args[0])
        try:
            return None if v is None else {"int": int, "float": float, "bool": bool, "str": str}[func](v)
        except (TypeError, ValueError):
            return None
    if func in ("max", "min") and node.args:
        vals = [ev(a) for a in node.args]
        return None if None in vals else (max if func == "max" else min)(vals)
    if func in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
        return ev(node.args[1]) if len(node.args) > 1 else None
    return None


def parse_config(path: Path, shown: str) -> dict[str, Option]:
    """gunicorn's configuration file: every top-level ``name = value``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return {}
    names: dict[str, ast.expr] = {}
    options: dict[str, Option] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            options[name] = Option(ast.unparse(stmt.value), f"{shown}:{stmt.lineno}", stmt.value, names)
            names[name] = stmt.value
    return options


def parse_command(tokens: list[str], where: str, root: Path) -> ServerCommand | None:
    """The server in one command line (``python -m gunicorn``, ``exec``, wrappers and
    ``manage.py runserver`` included), with its options; None when it starts none."""
    for i, tok in enumerate(tokens):
        base = tok.rsplit("/", 1)[-1]
        if base in PROGRAMS or (base == "-m" and i + 1 < len(tokens) and tokens[i + 1] in PROGRAMS):
            start = i + 2 if base == "-m" else i + 1
            program = tokens[i + 1] if base == "-m" else base
            return _server(program, tokens[start:], where, root)
        if base == "manage.py" and "runserver" in tokens[i + 1:]:
            return ServerCommand("runserver", None, where, {}, " ".join(tokens))
    return None


def _server(program: str, args: list[str], where: str, root: Path) -> ServerCommand:
    options: dict[str, Option] = {}
    app = None
    i = 0
    while i < len(args):
        tok = args[i]
        flag, eq, inline = tok.partition("=")
        if flag in _SWITCHES:
            options[_SWITCHES[flag]] = Option("True", where)
        elif flag in _FLAGS and (eq or i + 1 < len(args)):
            value = inline if eq else args[i + 1]
            options[_FLAGS[flag]] = Option(value, where)
            i += 0 if eq else 1
        elif _APP.match(tok) and app is None:
            app = tok
        i += 1
    if program == "gunicorn":
        conf_name = options["config"].text if "config" in options else "gunicorn.conf.py"
        conf = root / conf_name
        if conf.is_file():
            from_file = parse_config(conf, conf_name)
            options = {**from_file, **options}  # gunicorn: the command line wins
            if app is None and "wsgi_app" in from_file:
                app = str(from_file["wsgi_app"].value(1))
    return ServerCommand(program, app, where, options, " ".join([program, *args]))


def _split_shell(text: str) -> list[list[str]]:
    """Commands of a shell line (``&&``, ``;``, ``||`` split; ``sh -c "..."`` opened)."""
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        return []
    commands, current = [], []
    for tok in tokens:
        if tok in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        else:
            current.append(tok)
    commands.append(current)
    out = []
    for cmd in commands:
        if len(cmd) >= 3 and cmd[0].rsplit("/", 1)[-1] in ("sh", "bash") and cmd[1] == "-c":
            out.extend(_split_shell(cmd[2]))
        elif cmd:
            out.append(cmd)
    return out


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with backslash-continued lines joined."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        start, line = i + 1, lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i]
        out.append((start, line))
        i += 1
    return out


def _instruction(body: str) -> tuple[list[str] | None, str]:
    """A ``CMD``/``ENTRYPOINT`` body: (exec-form list or None, shell-form text)."""
    try:
        exec_form = json.loads(body) if body.startswith("[") else None
    except ValueError:
        exec_form = None
    return (list(map(str, exec_form)), "") if isinstance(exec_form, list) else (None, body)


def _dockerfile_commands(path: Path, shown: str) -> list[tuple[list[str], str]]:
    """The command each stage of a Dockerfile runs: its last ``ENTRYPOINT`` and ``CMD``,
    combined as Docker does (an exec-form ENTRYPOINT gets the CMD as its arguments)."""
    found: list[tuple[list[str], str]] = []
    stage: dict[str, tuple[tuple[list[str] | None, str], str]] = {}

    def close_stage() -> None:
        entry, cmd = stage.pop("ENTRYPOINT", None), stage.pop("CMD", None)
        if entry is not None and entry[0][0] is not None:  # exec form: CMD is its arguments
            tail = [] if cmd is None else cmd[0][0] if cmd[0][0] is not None else ["/bin/sh", "-c", cmd[0][1]]
            found.extend((c, (cmd or entry)[1]) for c in _split_shell(shlex.join(entry[0][0] + tail)))
        elif entry or cmd:  # a shell-form ENTRYPOINT ignores CMD
            (words, text), where = entry or cmd
            found.extend((c, where) for c in _split_shell(shlex.join(words) if words is not None else text))

    for start, text in _logical_lines(path.read_text(encoding="utf-8", errors="replace")):
        m = re.match(r"\s*(FROM|CMD|ENTRYPOINT)\s+(.*)", text, re.I)
        if m and m.group(1).upper() == "FROM":
            close_stage()
        elif m:
            stage[m.group(1).upper()] = (_instruction(m.group(2).strip()), f"{shown}:{start}")
    close_stage()
    return found


def find_commands(root: Path) -> list[ServerCommand]:
    """Every server command in the project's Procfile, Dockerfiles and start scripts; a
    lone ``gunicorn.conf.py`` counts as one when no command names gunicorn."""
    candidates: list[tuple[list[str], str]] = []
    procfile = root / "Procfile"
    if procfile.is_file():
        for n, line in enumerate(procfile.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            _, sep, cmd = line.partition(":")
            if sep and not line.lstrip().startswith("#"):
                candidates.extend((c, f"Procfile:{n}") for c in _split_shell(cmd))
    for path in sorted({*root.glob("Dockerfile*"), *root.glob("*.Dockerfile")}):
        if path.is_file():
            candidates.extend(_dockerfile_commands(path, path.name))
    for path in sorted(root.glob("*.sh")):
        for n, line in _logical_lines(path.read_text(encoding="utf-8", errors="replace")):
            candidates.extend((c, f"{path.name}:{n}") for c in _split_shell(line))
    commands = [c for c in (parse_command(toks, where, root) for toks, where in candidates) if c]
    conf = root / "gunicorn.conf.py"
    if conf.is_file() and not any(c.program == "gunicorn" for c in commands):
        options = parse_config(conf, conf.name)
        app = options["wsgi_app"].value(1) if "wsgi_app" in options else None
        commands.append(ServerCommand("gunicorn", app, f"{conf.name}:1", options, "gunicorn"))
    return commands
