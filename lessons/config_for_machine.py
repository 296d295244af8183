"""The configuration for this machine, generated from the notebooks' records.

    from lessons.config_for_machine import generate
    cfg = generate()              # reads results/notebooks/*.json (or generate(records))
    cfg.table()                   # one row per choice: the value, the notebook, the numbers
    print(cfg.settings())         # settings.py lines, each with the reason as a comment
    print(cfg.command())          # the server command line

Each choice reads one notebook's record and says which numbers decided it; when that
record (or the key) is missing, the choice falls back to a stated default and says so,
so a learner sees which notebook to run.  Records read (``nb.record`` keys):

  01_asgi_vs_wsgi       "rps" = {"sync view": {server kind: req/s}, "async view": {...}}
  02_production_server  "best workers" = {"sync": n, "async": n},
                        "sync sweep rps" = {workers (str): req/s}
  05_middleware         "stack rps" = {"gunicorn-sync": {"default", "minimal", "none": req/s},
                                       "uvicorn": {...}}
  07_caching            "cache rps" = {"none", "locmem", "django-redis", "redis": req/s}
  08_db_connections     "policy rps" = {"gunicorn-sync": {"CONN_MAX_AGE=0", "CONN_MAX_AGE=60",
                                        "pool": req/s}, "uvicorn": {...}},
                        "pool waits ms" = {label naming a pool size: [ms, ...]},
                        "connections after requests" = {label: {requests: connections}}

The decisions, for an API of ``def`` views like the lab's:
  interface    WSGI (gunicorn's sync worker) when it serves a def view at least as fast
               as uvicorn (01), else ASGI (gunicorn with uvicorn-worker's UvicornWorker);
  workers      the count 02 recorded for that worker class (the fewest within 5% of its best);
  middleware   the guide's minimal stack when it beats startproject's by 5% or more
               under that interface's server (05), else the default;
  cache        the faster shared Redis backend when it serves 10% or more over no cache
               (07); LocMem is left out: one copy per worker process;
  connections  the policy that served the most under that server (08), leaving out
               CONN_MAX_AGE=60 under ASGI when 08 saw it hold more connections as the
               requests grew (a leak); the pool's size: the smallest 08 measured whose
               worst wait stayed under 1 ms (a tenth of the budget) under ASGI; 1 under
               gunicorn's sync worker (one request at a time per process).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lessons.profile import Profile, server_cores

__all__ = ["Choice", "MachineConfig", "generate", "NOTEBOOKS"]

NOTEBOOKS = {
    "interface": "01_asgi_vs_wsgi",
    "workers": "02_production_server",
    "middleware": "05_middleware",
    "cache": "07_caching",
    "connections": "08_db_connections",
    "pool size": "08_db_connections",
}
MIDDLEWARE_GAIN = 1.05   # the minimal stack must serve 5% more than the default to be chosen
CACHE_GAIN = 1.10        # a cache must serve 10% more than none to be worth a network hop
POOL_WAIT_MS = 1.0       # a pool whose worst wait stays under this is big enough
ASGI_KIND = "gunicorn-uvicorn"
WSGI_KIND = "gunicorn-sync"


@dataclass(frozen=True)
class Choice:
    """One line of the configuration: what was chosen, from which notebook, and why."""

    knob: str
    value: Any
    notebook: str
    because: str
    measured: bool   # False: the record was missing and a stated default was used


@dataclass
class MachineConfig:
    """The generated configuration: a ``Profile`` and the reason for each of its choices."""

    profile: Profile
    choices: list[Choice] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """The notebooks whose records were missing (run them, then generate again)."""
        return sorted({c.notebook for c in self.choices if not c.measured})

    def choice(self, knob: str) -> Choice:
        return next(c for c in self.choices if c.knob == knob)

    def table(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [{"setting": c.knob, "value": _show(c.value), "from": c.notebook[:2] if c.measured
              else f"{c.notebook[:2]} (missing)", "because": c.because} for c in self.choices]
        ).set_index("setting")

    def settings(self) -> str:
        """The settings.py lines, each choice's reason above the lines it decided."""
        why = "\n".join(f"# {c.knob}: {c.because}" for c in self.choices
                        if c.knob in ("middleware", "cache", "connections", "pool size"))
        return why + "\n" + self.profile.settings_snippet()

    def command(self, bind: str = "0.0.0.0:8000") -> str:
        """The server command line (interface and workers), with its reasons."""
        from lessons.server import LabServer

        why = "\n".join(f"# {c.knob}: {c.because}" for c in self.choices
                        if c.knob in ("interface", "workers"))
        return why + "\n" + LabServer(self.profile).command_line(bind)

    def __str__(self) -> str:
        return "\n".join(f"{c.knob}: {_show(c.value)}  ({c.because})" for c in self.choices)


def generate(records: Mapping[str, Mapping[str, Any]] | None = None, *,
             results: Path | None = None) -> MachineConfig:
    """The configuration the records support: ``records`` maps a notebook's name to its
    measurements (default: every saved record under ``results``)."""
    if records is None:
        from lessons.records import all_records

        records = {name: r.get("measurements", {}) for name, r in all_records(results).items()}
    choices: list[Choice] = []

    interface = _interface(records, choices)
    kind = WSGI_KIND if interface == "wsgi" else ASGI_KIND
    workers = _workers(records, choices, interface)
    middleware = _middleware(records, choices, interface)
    cache = _cache(records, choices)
    conn_max_age, pool, pool_size = _connections(records, choices, interface, workers)
    profile = Profile(server=kind, workers=workers, middleware=middleware, cache=cache,
                      conn_max_age=conn_max_age, db_pool=pool, db_pool_size=pool_size)
    return MachineConfig(profile, choices)


# -- the choices ----------------------------------------------------------------------

def _get(records: Mapping[str, Mapping[str, Any]], notebook: str, *keys: str) -> Any:
    """records[notebook][k1][k2]..., or None when any level is missing."""
    value: Any = records.get(notebook) or {}
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _interface(records: Mapping[str, Mapping[str, Any]], choices: list[Choice]) -> str:
    nb = NOTEBOOKS["interface"]
    rps = _get(records, nb, "rps", "sync view") or {}
    wsgi, asgi = _number(rps.get(WSGI_KIND)), _number(rps.get("uvicorn"))
    if wsgi is None or asgi is None:
        choices.append(Choice("interface", "WSGI (gunicorn sync)", nb, f"notebook {nb[:2]} has no "
                              "record of a def view's req/s under gunicorn sync and uvicorn: WSGI, "
                              "the lab's default (run notebook 01 to decide)", False))
        return "wsgi"
    if wsgi >= asgi:
        choices.append(Choice("interface", "WSGI (gunicorn sync)", nb,
                              f"a def view served {wsgi:,.0f} req/s under gunicorn's sync worker and "
                              f"{asgi:,.0f} under uvicorn ({wsgi / asgi:.2f}x), one worker each", True))
        return "wsgi"
    choices.append(Choice("interface", "ASGI (gunicorn + UvicornWorker)", nb,
                          f"a def view served {asgi:,.0f} req/s under uvicorn and {wsgi:,.0f} under "
                          f"gunicorn's sync worker ({asgi / wsgi:.2f}x), one worker each", True))
    return "asgi"


def _workers(records: Mapping[str, Mapping[str, Any]], choices: list[Choice], interface: str) -> int:
    nb = NOTEBOOKS["workers"]
    which = "sync" if interface == "wsgi" else "async"
    best = _get(records, nb, "best workers", which)
    cores = server_cores()
    if isinstance(best, bool) or not isinstance(best, int) or best < 1:
        n = 2 * cores + 1
        choices.append(Choice("workers", n, nb, f"notebook {nb[:2]} has no record of the best "
                              f"{which} worker count: the guide's (2 x {cores} core) + 1 = {n} "
                              "(run notebook 02 to decide)", False))
        return n
    sweep = _get(records, nb, "sync sweep rps") if which == "sync" else None
    where = f"{cores} core" + ("s" if cores > 1 else "")
    # 02 records the fewest workers within 5% of its sweep's best, not the sweep's maximum.
    text = (f"notebook 02's choice of {which} workers on the {where} the lab gives the server: "
            + ("the fewest within 5% of the best throughput it measured" if which == "sync" else
               "the formula's count when its processes served at least 1/0.95 times one process's requests "
               "per CPU-second, else one"))
    if isinstance(sweep, Mapping) and sweep:
        points = sorted(((int(k), v) for k, v in sweep.items() if str(k).isdigit() and _number(v)),
                        key=lambda kv: kv[0])
        if points:
            text += (" (its sweep on a view that waits 5 ms, workers: req/s: "
                     + ", ".join(f"{k}: {v:,.0f}" for k, v in points) + ")")
    choices.append(Choice("workers", best, nb, text, True))
    return best


def _middleware(records: Mapping[str, Mapping[str, Any]], choices: list[Choice], interface: str) -> str:
    nb = NOTEBOOKS["middleware"]
    server = WSGI_KIND if interface == "wsgi" else "uvicorn"
    rps = _get(records, nb, "stack rps", server) or {}
    default, minimal, none = (_number(rps.get(k)) for k in ("default", "minimal", "none"))
    if default is None or minimal is None:
        choices.append(Choice("middleware", "minimal", nb, f"notebook {nb[:2]} has no record of the "
                              f"default and minimal stacks under {server}: the guide's minimal "
                              "stack (run notebook 05 to decide)", False))
        return "minimal"
    gain = minimal / default
    text = (f"under {server}, the guide's minimal stack served {minimal:,.0f} req/s, startproject's "
            f"{default:,.0f} ({gain - 1:+.1%})")
    if none is not None:
        text += f", none at all {none:,.0f}"
    if gain >= MIDDLEWARE_GAIN:
        choices.append(Choice("middleware", "minimal", nb, text + "; SessionMiddleware only if "
                              "the API uses sessions (the guide's own comment)", True))
        return "minimal"
    choices.append(Choice("middleware", "default", nb, text + f": less than {MIDDLEWARE_GAIN - 1:.0%} "
                          "more, not worth a change", True))
    return "default"


def _cache(records: Mapping[str, Mapping[str, Any]], choices: list[Choice]) -> str:
    nb = NOTEBOOKS["cache"]
    rps = _get(records, nb, "cache rps") or {}
    none = _number(rps.get("none"))
    shared = {k: _number(rps.get(k)) for k in ("django-redis", "redis")}
    shared = {k: v for k, v in shared.items() if v is not None}
    if none is None or not shared:
        choices.append(Choice("cache", "django-redis", nb, f"notebook {nb[:2]} has no record of "
                              "req/s with and without a cache: django-redis, the guide's choice "
                              "(run notebook 07 to decide)", False))
        return "django-redis"
    best = max(shared, key=lambda k: shared[k])
    text = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(shared.items())) + f", no cache {none:,.0f} req/s"
    locmem = _number(rps.get("locmem"))
    if locmem is not None:
        text += f" (LocMem {locmem:,.0f}, but one copy per worker process)"
    if shared[best] >= CACHE_GAIN * none:
        choices.append(Choice("cache", best, nb, f"{text}: {best} serves {shared[best] / none:.2f}x", True))
        return best
    choices.append(Choice("cache", "none", nb, f"{text}: no shared cache served {CACHE_GAIN - 1:.0%} "
                          "more, not worth a network round trip", True))
    return "none"


_POLICIES = {"CONN_MAX_AGE=0": (0, False), "CONN_MAX_AGE=60": (60, False), "pool": (0, True)}


def _connections(records: Mapping[str, Mapping[str, Any]], choices: list[Choice], interface: str,
                 workers: int) -> tuple[int, bool, int | None]:
    nb = NOTEBOOKS["connections"]
    server = WSGI_KIND if interface == "wsgi" else "uvicorn"
    rps = _get(records, nb, "policy rps", server) or {}
    measured = {k: _number(rps.get(k)) for k in _POLICIES}
    measured = {k: v for k, v in measured.items() if v is not None}
    known = bool(measured)
    if not measured:
        default = "CONN_MAX_AGE=60" if interface == "wsgi" else "pool"
        choices.append(Choice("connections", default, nb, f"notebook {nb[:2]} has no record of "
                              f"req/s by connection policy under {server}: {default}, what Django's "
                              "docs advise for this interface (run notebook 08 to decide)", False))
        policy = default
    else:
        leak = _leak(records, nb) if interface == "asgi" else None
        allowed = {k: v for k, v in measured.items() if not (leak and k == "CONN_MAX_AGE=60")}
        policy = max(allowed, key=lambda k: allowed[k]) if allowed else "pool"
        text = f"under {server}: " + ", ".join(f"{k} {v:,.0f}" for k, v in measured.items()) + " req/s"
        if leak:
            text += f"; left out CONN_MAX_AGE=60: {leak}"
        choices.append(Choice("connections", policy, nb, text, True))
    conn_max_age, pool = _POLICIES[policy]
    if pool and interface == "wsgi":
        # 08's bursts (8 requests at once) ran at a uvicorn worker; a sync worker serves one
        # request at a time, so its process never holds two connections at once.
        size = 1
        choices.append(Choice("pool size", size, nb, "1 per worker: gunicorn's sync worker serves one "
                              "request at a time, so a process never uses two connections at once "
                              "(notebook 08's pool waits were measured at a uvicorn worker, 8 requests "
                              "at once)", known))
    else:
        size = _pool_size(records, choices, nb, pool, workers) if pool else None
    if not pool:
        choices.append(Choice("pool size", "-", nb, "no pool: each worker keeps its own connection"
                              if conn_max_age else "no pool: a new connection per request", known))
    return conn_max_age, pool, size


def _leak(records: Mapping[str, Mapping[str, Any]], nb: str) -> str | None:
    """A sentence when 08 saw CONN_MAX_AGE=60 under ASGI hold more connections as the
    requests grew, else None."""
    after = _get(records, nb, "connections after requests") or {}
    for label, counts in after.items():
        text = str(label).lower()
        if "60" not in text or not ("asgi" in text or "uvicorn" in text) or not isinstance(counts, Mapping):
            continue
        points = sorted((int(k), v) for k, v in counts.items() if str(k).isdigit() and _number(v) is not None)
        if len(points) >= 2 and points[-1][1] > points[0][1]:
            return (f"{label} held {points[0][1]:g} connections after {points[0][0]} requests and "
                    f"{points[-1][1]:g} after {points[-1][0]}")
    return None


def _pool_size(records: Mapping[str, Mapping[str, Any]], choices: list[Choice], nb: str, pool: bool,
               workers: int) -> int | None:
    waits = _get(records, nb, "pool waits ms") or {}
    sizes = []
    for label, values in waits.items():
        found = re.search(r"\d+", str(label))
        if found and isinstance(values, list):
            clean = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
                     and math.isfinite(v) and v >= 0]
            if clean:
                sizes.append((int(found.group()), max(clean), str(label)))
    if not sizes:
        choices.append(Choice("pool size", 4, nb, f"notebook {nb[:2]} has no record of pool waits by "
                              "size: psycopg_pool's default that Django's pool=True gives, 4 per "
                              "worker process (run notebook 08 to decide)", False))
        return 4
    sizes.sort()
    enough = [s for s in sizes if s[1] < POOL_WAIT_MS]
    size, worst, label = enough[0] if enough else sizes[-1]
    text = "; ".join(f"{lbl}: worst wait {w:.2f} ms" for _, w, lbl in sizes)
    verdict = (f"the smallest whose worst wait stayed under {POOL_WAIT_MS:g} ms" if enough
               else f"none stayed under {POOL_WAIT_MS:g} ms: the largest measured")
    choices.append(Choice("pool size", size, nb, f"{text}: {size} per worker, {verdict}", True))
    return size


def _show(value: Any) -> str:
    return str(value)
