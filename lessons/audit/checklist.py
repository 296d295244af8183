"""Which of the guide's checklist changes ``--apply`` measures on a project, and how.

Each change is applied on top of the ones before it, through the wrapper settings (an
``Overrides``) or the server kind, never by editing a file of the project:

1. the server interface that suits the views measured: a sync (``def``) view under a WSGI
   server (gunicorn's sync worker) costs no thread hop, under ASGI it costs one more hop
   than an async view (notebook 01); async views under uvicorn;
2. middleware trimmed to what an API needs (notebook 05): Django's browser middleware
   (sessions, CSRF, authentication from the session, messages, X-Frame-Options) and
   profilers go, the project's own and every other entry stay;
3. database connections kept (notebook 08): under WSGI ``CONN_MAX_AGE = 600`` when they
   do not persist yet (one connection per worker process, reused); under ASGI Django's pool
   (``OPTIONS["pool"] = True``: psycopg_pool's default, 4 connections) with
   ``CONN_MAX_AGE = 0``, which Django requires with the pool;
4. where the project's code uses the cache (``django.core.cache``, ``cache_page``, the
   cache middleware): every alias that is per process (LocMem), on disk, in the database
   or broken (a ``PARSER_CLASS`` that does not import) becomes django-redis on the lab's
   Valkey (notebook 07), or Django's own Redis cache when django-redis is not installed.

A change that does not apply (already done, or its package missing from the project's
interpreter) is left out, and said.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab_project.lab import knobs
from lessons.audit.serve import DEFAULT_KINDS
from lessons.audit.wrapper import Overrides
from lessons.server_kinds import SERVER_KINDS

if TYPE_CHECKING:
    from lessons.audit.findings import Finding
    from lessons.audit.project import Project
    from lessons.audit.sources import ServerCommand

__all__ = ["ADDRESSES", "Change", "NOT_FOR_API", "changes", "start_kind", "uses_cache"]

# Django's middleware a token-authenticated JSON API does not use (the lab's tuned stack
# keeps SecurityMiddleware and CommonMiddleware: lessons.profile.TUNED_MIDDLEWARE).
NOT_FOR_API = (knobs.SESSION, knobs.CSRF, knobs.AUTH, knobs.MESSAGE, knobs.XFRAME)
PROFILER_MIDDLEWARE = tuple(p.middleware for p in knobs.PROFILERS.values() if p.middleware)
CONN_MAX_AGE = 600        # the tuned preset's (lessons.profile)
_CACHE_USE = re.compile(r"django\.core\.cache|\bcache_page\b|\bcaches\[")
_SKIP_DIRS = {"migrations", "node_modules", "site-packages", "__pycache__"}
_SHARED_CACHE = ("Redis", "Memcache", "PyLibMC", "Dummy")  # in a BACKEND's path
# The static findings (lessons.audit.findings) each change answers, named in its text.
ADDRESSES = {
    "interface": ("sync-views-under-asgi", "async-views-under-wsgi"),
    "middleware": ("middleware-not-for-api", "sync-only-middleware", "profiler-installed"),
    "connections": ("conn-max-age-under-asgi", "pool-size"),
    "cache": ("locmem-several-workers", "redis-parser-class"),
}


@dataclass(frozen=True)
class Change:
    """One step: ``text`` says what changes; ``apply`` turns the configuration before it
    (server kind, overrides) into the one after."""

    text: str
    apply: Callable[[str, Overrides], tuple[str, Overrides]]


def start_kind(project: Project) -> tuple[str, str]:
    """The lab's server kind closest to how the project is served, and where that was read."""
    from lessons.audit.sources import find_commands

    for command in find_commands(project.root):
        kind = _lab_kind(command)
        if kind is not None:
            return kind, f"as {command.where} serves it"
    return DEFAULT_KINDS[0], "no server command found in the project"


def _lab_kind(command: ServerCommand) -> str | None:
    if command.program == "gunicorn":
        worker = command.worker_class.lower()
        if "uvicorn" in worker:
            return "gunicorn-uvicorn"
        return {"sync": "gunicorn-sync", "gthread": "gunicorn-gthread", "asgi": "gunicorn-asgi"}.get(worker)
    if command.program == "granian" and command.interface:
        return f"granian-{command.interface}"
    return command.program if command.program in SERVER_KINDS else None


def changes(project: Project, facts: dict[str, Any], findings: Sequence[Finding], paths: Sequence[str],
            have: Callable[[str], bool], progress: Callable[[str], None], *, start: str) -> list[Change]:
    """The checklist's changes that apply to this project, in the order above, each
    naming the static findings it answers; ``have(m)`` says whether the project's
    interpreter can import module ``m``; ``start`` is the server kind the first step runs."""
    interface = _interface(facts, paths, start)
    kind = interface[0].apply(start, Overrides())[0] if interface[0] else start
    found = {"interface": interface, "middleware": _middleware(facts),
             "connections": _connections(facts, have, SERVER_KINDS[kind].interface),
             "cache": _cache(project, facts, have)}
    ids = {f.id for f in findings}
    out = []
    for name, (change, why) in found.items():
        if change is None:
            progress(f"--apply: {why}")
            continue
        answered = [i for i in ADDRESSES[name] if i in ids]
        text = change.text + (f" [answers {', '.join(answered)}]" if answered else "")
        out.append(Change(text, change.apply))
    return out


def _interface(facts: dict[str, Any], paths: Sequence[str], start: str) -> tuple[Change | None, str]:
    views = {r.get("path"): bool(r.get("is_async")) for r in facts.get("routes", [])}
    known = [views[p] for p in paths if p in views]
    if not known:
        return None, "no server interface change: the measured paths are not routes of the URLconf"
    asynchronous = sum(known) > len(known) / 2
    kind = "uvicorn" if asynchronous else "gunicorn-sync"
    if SERVER_KINDS[kind].interface == SERVER_KINDS[start].interface:
        return None, f"no server interface change: {start} already speaks the interface that suits the views"
    why = ("async views under ASGI (uvicorn)" if asynchronous else
           "sync views under WSGI (gunicorn's sync worker): no thread hop per request")

    def apply(current: str, overrides: Overrides) -> tuple[str, Overrides]:
        return kind, overrides

    return Change(f"server interface: {why} (notebook 01)", apply), ""


def _middleware(facts: dict[str, Any]) -> tuple[Change | None, str]:
    stack = [str(m) for m in facts.get("MIDDLEWARE", [])]
    gone = [m for m in stack if m in NOT_FOR_API or m in PROFILER_MIDDLEWARE]
    if not gone:
        return None, "no middleware to trim: none of Django's browser middleware nor a profiler is installed"
    kept = [m for m in stack if m not in gone]
    names = ", ".join(m.rsplit(".", 1)[-1] for m in gone)

    def apply(kind: str, overrides: Overrides) -> tuple[str, Overrides]:
        return kind, overrides.with_settings(MIDDLEWARE=kept)

    return Change(f"middleware trimmed to what an API needs (notebook 05): without {names}", apply), ""


def _default_database(facts: dict[str, Any]) -> dict[str, Any]:
    return (facts.get("DATABASES") or {}).get("default") or {}


def _connections(facts: dict[str, Any], have: Callable[[str], bool],
                 interface: str) -> tuple[Change | None, str]:
    """Under WSGI a persistent connection per worker process; under ASGI Django's pool
    (the server interface is the one the steps run under by then)."""
    db = _default_database(facts)
    if (db.get("OPTIONS") or {}).get("pool"):
        return None, "no connection change: the project already uses Django's pool"
    age = db.get("CONN_MAX_AGE", 0)
    if interface == "wsgi":
        if age is None or age > 0:
            return None, f"no connection change: connections already persist under WSGI (CONN_MAX_AGE = {age})"
        return Change(f"persistent connections under WSGI (notebook 08): CONN_MAX_AGE = {CONN_MAX_AGE}",
                      lambda kind, o: (kind, o.with_database(CONN_MAX_AGE=CONN_MAX_AGE))), ""
    if not (have("psycopg_pool") and have("psycopg")):
        return None, ("no connection change: under ASGI the change is Django's pool, and psycopg_pool "
                      "is not installed in the project's interpreter")
    return Change("Django's connection pool under ASGI (notebook 08): OPTIONS['pool'] = True "
                  "(psycopg_pool's default, 4 connections) and CONN_MAX_AGE = 0, which the pool requires",
                  lambda kind, o: (kind, o.with_database(CONN_MAX_AGE=0, OPTIONS={"pool": True}))), ""


def uses_cache(project: Project, facts: dict[str, Any]) -> bool:
    """Whether the project's code or middleware uses Django's cache (its settings and
    migrations aside)."""
    if any("CacheMiddleware" in str(m) for m in facts.get("MIDDLEWARE", [])):
        return True
    settings_file = facts.get("settings_file") or ""
    for path in project.root.rglob("*.py"):
        relative = path.relative_to(project.root)
        if set(relative.parts[:-1]) & _SKIP_DIRS or any(p.startswith(".") for p in relative.parts):
            continue
        if str(relative) == settings_file or path.stat().st_size > 1_000_000:
            continue
        if _CACHE_USE.search(path.read_text(errors="replace")):
            return True
    return False


def _cache(project: Project, facts: dict[str, Any], have: Callable[[str], bool]) -> tuple[Change | None, str]:
    caches = facts.get("CACHES") or {}
    weak = [alias for alias, conf in caches.items()
            if conf.get("parser_error") or not any(s in str(conf.get("BACKEND", "")) for s in _SHARED_CACHE)]
    if not weak:
        return None, "no cache change: every cache is already shared by the workers"
    if not uses_cache(project, facts):
        return None, "no cache change: the project's code does not use Django's cache"
    if have("django_redis"):
        spec = knobs.CACHES["django-redis"]
        conf = {"BACKEND": spec.backend, "LOCATION": "redis://127.0.0.1/0", "OPTIONS": dict(spec.options)}
    elif have("redis"):
        conf = {"BACKEND": knobs.CACHES["redis"].backend, "LOCATION": "redis://127.0.0.1/0"}
    else:
        return None, "no cache change: neither django-redis nor redis-py is installed in the project's interpreter"
    replaced = {alias: {**conf, "KEY_PREFIX": alias} for alias in weak}

    def apply(kind: str, overrides: Overrides) -> tuple[str, Overrides]:
        return kind, overrides.with_caches(**replaced)  # LOCATION: the lab's Valkey (wrapper)

    backend = conf["BACKEND"].rsplit(".", 2)[0]
    return Change(f"cache shared by every worker (notebook 07): {', '.join(weak)} on {backend}, "
                  "the lab's Valkey", apply), ""
