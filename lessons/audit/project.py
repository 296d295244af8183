"""The learner's project, located on disk and read only in child processes.

Nothing of the project is ever imported into the caller's interpreter: a project has its
own dependencies (often not the lab's), its settings may raise or have side effects, and
the lab's own Django (``lab_project``) must not be configured by it.  ``Project.run_child``
is the one way anything (these facts, H2's servers and measurements) runs the project's
code: in ``Project.python`` (``--python``: the project's own interpreter or virtualenv),
with the project's root and whatever the lab injects on ``PYTHONPATH``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["AuditError", "Project", "locate", "settings_from_manage", "read_facts"]

_FACTS_CHILD = Path(__file__).with_name("facts_child.py")


class AuditError(Exception):
    """One sentence that says what to do; the CLI prints it and exits 2."""


@dataclass(frozen=True)
class Project:
    """Where the project is and how to run its code."""

    root: Path               # the directory holding manage.py (absolute)
    settings_module: str     # e.g. "shop.settings"
    python: str              # the interpreter for the project's children

    def child_env(self, *, settings_module: str | None = None,
                  extra_path: Sequence[Path] = ()) -> dict[str, str]:
        """os.environ + PYTHONPATH = extra_path..., root + DJANGO_SETTINGS_MODULE.

        The lab's own PYTHONPATH is not inherited: the project must see its root and what
        the lab injects, never the lab's ``lab_project``."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in extra_path), str(self.root)])
        env["DJANGO_SETTINGS_MODULE"] = settings_module or self.settings_module
        env.pop("PYTHONHOME", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # the audit leaves the project's tree as it was
        return env

    def run_child(self, code: str, *, settings_module: str | None = None,
                  extra_path: Sequence[Path] = (), timeout: float = 60,
                  purpose: str = "Running the project's code") -> Any:
        """Run ``code`` in ``self.python`` (cwd = root); it prints one JSON line last, which
        is returned parsed.  A child that fails or overruns ``timeout`` raises AuditError
        with one sentence naming the exception; nothing it started is left running."""
        env = self.child_env(settings_module=settings_module, extra_path=extra_path)
        # Output goes to files, not pipes: a process the project's code starts and leaves
        # behind would hold a pipe open, and reading to its end would wait for it.
        with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
            try:
                proc = subprocess.Popen([self.python, "-c", code], cwd=self.root, env=env,
                                        stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                                        start_new_session=True)
            except OSError as exc:
                raise AuditError(f"{purpose} could not start {self.python}: {exc.strerror}.") from None
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise AuditError(f"{purpose} did not finish within {timeout:g} s in {self.python}; "
                                 "it was stopped.") from None
            except BaseException:
                _kill_group(proc)
                raise
            finally:
                _kill_leftovers(proc.pid)
            out, err = _read(out_f), _read(err_f)
        if proc.returncode != 0:
            raise AuditError(self._failure(purpose, err, proc.returncode))
        for line in reversed(out.splitlines()):
            if line.strip():
                try:
                    return json.loads(line)
                except ValueError:
                    break
        raise AuditError(f"{purpose} printed no JSON result in {self.python} "
                         f"(its last output: {out.strip()[-200:]!r}).")

    def _failure(self, purpose: str, stderr: str, code: int) -> str:
        """One sentence from a child's traceback: its last line, and the project's own
        file and line where it was raised when one is in the traceback."""
        lines = [line for line in stderr.splitlines() if line.strip()]
        last = lines[-1].strip().rstrip(".") if lines else f"exit status {code}"
        missing = re.match(r"ModuleNotFoundError: No module named '([\w.]+)'", last)
        if missing:
            top = missing.group(1).split(".")[0]
            name = "Django" if top == "django" else f"the package {top!r}"
            return (f"{purpose} failed: {self.python} cannot import {name} ({last}); install "
                    "the project's requirements there, or pass --python with the project's "
                    "own interpreter or virtualenv.")
        where = ""
        for line in reversed(lines):
            m = re.match(r'\s*File "(.+)", line (\d+)', line)
            if m and _inside(Path(m.group(1)), self.root):
                where = f" (at {Path(m.group(1)).resolve().relative_to(self.root)}:{m.group(2)})"
                break
        return f"{purpose} failed with {last}{where}."


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError):
        return False


def _read(f: IO[str]) -> str:
    f.seek(0)
    return f.read()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's session while its leader is still unreaped (so the group id
    cannot belong to anyone else), then reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _kill_leftovers(pgid: int) -> None:
    """Processes the child started in its session and left behind (its own process is
    already reaped): SIGKILL each member of that process group but its former leader's
    pid, so the project's code leaves nothing running."""
    import psutil

    for p in psutil.process_iter():
        try:
            if p.pid != pgid and os.getpgid(p.pid) == pgid:
                p.kill()
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue


def settings_from_manage(manage: Path) -> str | None:
    """The guide's rule: the settings module is what manage.py passes to
    ``os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)`` (read with ``ast``, never run)."""
    try:
        tree = ast.parse(manage.read_text(encoding="utf-8"), filename=str(manage))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "setdefault" and len(node.args) == 2
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
                and node.args[0].value == "DJANGO_SETTINGS_MODULE"):
            return node.args[1].value
    return None


def _find_manage(path: Path) -> Path:
    """The directory holding manage.py: ``path`` itself, manage.py given directly, or the
    one subdirectory one level down that holds it (a repository with ``src/manage.py``)."""
    if path.is_file() and path.name == "manage.py":
        return path.parent
    if not path.is_dir():
        raise AuditError(f"{path} is not a directory: pass the directory that holds your "
                         "project's manage.py.")
    if (path / "manage.py").is_file():
        return path
    below = sorted(p.parent for p in path.glob("*/manage.py"))
    if len(below) == 1:
        return below[0]
    if below:
        names = ", ".join(str(p.relative_to(path)) for p in below)
        raise AuditError(f"{path} holds several Django projects ({names}): pass one of them.")
    raise AuditError(f"{path} is not a Django project (no manage.py in it or one level "
                     "below): pass the directory that holds your project's manage.py.")


def _interpreter(python: str | None) -> str:
    """``--python``: an interpreter, or a virtualenv directory (its bin/python)."""
    if python is None:
        return sys.executable
    p = Path(python).expanduser()
    if p.is_dir():
        p = p / "bin" / "python"
    if not (p.is_file() and os.access(p, os.X_OK)):
        raise AuditError(f"--python {python}: no executable interpreter there; pass the "
                         "project's python (e.g. .venv/bin/python) or its virtualenv directory.")
    return str(p.absolute())


def locate(path: str | Path, *, settings: str | None = None, python: str | None = None) -> Project:
    """The project at ``path``, its settings module (``settings``, else manage.py's
    ``DJANGO_SETTINGS_MODULE`` default) and its interpreter.  AuditError on bad input."""
    root = _find_manage(Path(path).expanduser().resolve())
    module = settings or settings_from_manage(root / "manage.py")
    if not module:
        raise AuditError(f"{root / 'manage.py'} sets no DJANGO_SETTINGS_MODULE default: pass "
                         "--settings with your settings module (e.g. --settings mysite.settings).")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module):
        raise AuditError(f"--settings {module!r} is not a dotted module name (e.g. mysite.settings).")
    return Project(root=root, settings_module=module, python=_interpreter(python))


def read_facts(project: Project, *, timeout: float = 60) -> dict[str, Any]:
    """What the settings child reports (see facts_child.py): settings values (passwords
    removed), each middleware's sync/async flags, CACHES with PARSER_CLASS import errors,
    package versions and ``routes``; files inside the project are relative to its root."""
    facts = project.run_child(_FACTS_CHILD.read_text(encoding="utf-8"), timeout=timeout,
                              purpose=f"Importing the settings module {project.settings_module}")
    if not isinstance(facts, dict):
        raise AuditError("The settings child returned no facts; this is a bug in the audit.")
    return facts
