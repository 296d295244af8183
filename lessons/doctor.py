"""``python -m lessons doctor``: can this machine run the lab?  Each line names the fix.

Run it before a workshop (and learners run it when something fails): it checks the
Python, the pinned packages, the PostgreSQL and Valkey binaries, whether PostgreSQL can
run as the unprivileged user when you are root, CPU pinning and loopback ports, without
starting the lab.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lessons import config, cpus
from lessons.measure.machine import pins as _pins

__all__ = ["Check", "checks", "main"]

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def check_python() -> Check:
    v = sys.version_info
    text = f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    if v < (3, 12):
        return Check("Python", FAIL, text, "Django 6.1 needs Python 3.12 or newer: run `make lab`, "
                     "which builds .venv with one.")
    return Check("Python", OK, text)


def check_checkout() -> Check:
    where = Path(__file__).resolve().parent
    if config.is_checkout():
        # Run from the clone, the django_p99_lab.egg-info setuptools leaves there is found
        # too: only metadata outside the clone says what this Python has installed.
        installs = [_is_editable(d) for d in importlib.metadata.distributions(name="django-p99-lab")
                    if Path(str(d.locate_file(""))).resolve() != config.REPO]
        if not any(installs):
            state = "not installed editable" if installs else "not installed"
            return Check("Checkout", FAIL, f"the workbook is {state} in {sys.executable}: lessons "
                         f"imports from {config.REPO} only when that is the working directory, so a "
                         f"kernel started in notebooks/ cannot import it",
                         "run `make lab`, or `pip install -r requirements.txt -e .` in the clone.")
        return Check("Checkout", OK, f"lessons from {where} (installed editable), lab project in "
                     f"{config.LAB_PROJECT}")
    return Check("Checkout", FAIL, f"lessons runs from {where}, which has no notebooks/ and lab_project/ beside it",
                 "in a clone of the workbook, install it editable: `pip install -r requirements.txt -e .`.")


def _is_editable(dist: importlib.metadata.Distribution) -> bool:
    try:
        return bool(json.loads(dist.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable"))
    except ValueError:
        return False


def check_packages() -> Check:
    missing, wrong = [], []
    for name, want in _pins().items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if have != want:
            wrong.append(f"{name} {have} (pinned {want})")
    if missing:
        return Check("Packages", FAIL, f"missing: {', '.join(missing)}",
                     "run `make lab` (or `pip install -r requirements.txt -e .` in this Python).")
    if wrong:
        return Check("Packages", WARN, "; ".join(wrong),
                     "results may differ from the workbook's: `pip install -r requirements.txt -e .`.")
    return Check("Packages", OK, f"{len(_pins())} pinned packages as required")


def check_postgres() -> Check:
    if config.external_database_url():
        return Check("PostgreSQL", OK, "external, from LAB_DATABASE_URL")
    try:
        from lessons.services import pg_binaries

        postgres = pg_binaries() / "postgres"
        out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True,
                             timeout=20).stdout.strip()
    except Exception as exc:
        return Check("PostgreSQL", FAIL, f"binaries not usable ({exc})",
                     "run `make lab`, or set LAB_DATABASE_URL to a PostgreSQL you run.")
    return Check("PostgreSQL", OK, out)


def check_valkey() -> Check:
    if config.external_redis_url():
        return Check("Valkey", OK, "external, from LAB_REDIS_URL")
    try:
        from lessons.services import valkey_binary

        out = subprocess.run([str(valkey_binary()), "--version"], capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except Exception as exc:
        return Check("Valkey", FAIL, str(exc),
                     "run `make lab`, or set LAB_REDIS_URL to a Redis or Valkey you run.")
    return Check("Valkey", OK, out.split(" sha=")[0])


def check_home() -> Check:
    home = config.lab_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".doctor"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("LAB_HOME", FAIL, f"{home}: {exc}", "set LAB_HOME to a writable directory.")
    if config.is_root() and not config.external_database_url():
        import pwd

        try:
            from lessons.services import PG_USER_WHEN_ROOT, ServiceError, postgres_home
        except ImportError as exc:
            return Check("LAB_HOME", FAIL, f"{home}: cannot check it ({exc})",
                         "install the packages first (see Packages).")

        try:
            pwd.getpwnam(PG_USER_WHEN_ROOT)
            pg_home = postgres_home(home, create=False)
        except KeyError:
            return Check("LAB_HOME", FAIL, f"you are root and there is no user '{PG_USER_WHEN_ROOT}'",
                         f"create it (`useradd -r {PG_USER_WHEN_ROOT}`) or run as a normal user.")
        except ServiceError as exc:
            return Check("LAB_HOME", FAIL, str(home), str(exc))
        if pg_home != home:
            return Check("LAB_HOME", OK, f"{home} (root: PostgreSQL will run as '{PG_USER_WHEN_ROOT}', "
                         f"who cannot enter it, so its data will be in {pg_home})")
        return Check("LAB_HOME", OK, f"{home} (root: PostgreSQL will run as '{PG_USER_WHEN_ROOT}')")
    return Check("LAB_HOME", OK, str(home))


def check_pinning() -> Check:
    plan = cpus.plan()
    if plan.pinned:
        return Check("CPU pinning", OK, plan.note)
    return Check("CPU pinning", WARN, plan.note, "measurements still work; repeat runs and trust ratios.")


def check_ports() -> Check:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    except OSError as exc:
        return Check("Loopback ports", FAIL, str(exc), "the lab needs 127.0.0.1: check your firewall/sandbox.")
    return Check("Loopback ports", OK, f"127.0.0.1 free ports available (e.g. {port})")


def check_wrk() -> Check:
    path = shutil.which("wrk")
    if path:
        return Check("wrk (optional)", OK, path)
    return Check("wrk (optional)", OK, "not installed; `python -m lessons calibrate` compares with it when present")


def checks() -> list[Check]:
    return [check_python(), check_checkout(), check_packages(), check_postgres(), check_valkey(), check_home(),
            check_pinning(), check_ports(), check_wrk()]


def main() -> int:
    """Print the readiness table; exit status 0 only when the lab can run."""
    results = checks()
    width = max(len(c.name) for c in results)
    for c in results:
        print(f"{c.status:>4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != OK:
            print(f"{'':>4}  {'':<{width}}  -> {c.fix}")
    failed = [c for c in results if c.status == FAIL]
    print("The lab can run." if not failed else f"{len(failed)} problem(s) to fix before the lab can run.")
    return 1 if failed else 0
