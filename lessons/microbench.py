"""In-process micro-benchmarks of the lab project, in their own pinned process.

Some costs are too small to see over HTTP next to the network and the server: one
middleware, one serializer per item.  These run the lab project's Django directly
(no server, no socket) many times and report microseconds per request, in a child
process pinned to the server's core, with the lab's database and cache, so the
notebook kernel's own Django (if any) and its event loop stay out of the numbers.

    python -m lessons.microbench '{"task": "middleware", ...}' OUT.json   # writes one JSON object
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessons import config, procs

if TYPE_CHECKING:
    from lessons.lab import Lab

__all__ = ["run", "Microbench", "paired", "per_request_us", "middleware_steps"]


def run(lab: Lab, task: str, *, env: dict[str, str] | None = None, timeout: float = 300,
        **params: Any) -> Microbench:
    """Run ``task`` in a child process (``procs.spawn``: stopped whatever happens) pinned
    to the server's CPU, with the lab's Django environment and no middleware; return its
    result."""
    from lessons.profile import Profile

    child_env = {**os.environ, "PYTHONPATH": str(config.LAB_PROJECT),
                 "DJANGO_SETTINGS_MODULE": "lab.settings",
                 **lab.django_env(Profile(middleware="none")), **(env or {})}
    with tempfile.TemporaryDirectory(prefix="microbench-") as tmp:
        result, log = Path(tmp) / "result.json", Path(tmp) / "output.log"
        argv = [sys.executable, "-m", "lessons.microbench", json.dumps({"task": task, **params}), str(result)]
        proc = procs.spawn(argv, env=child_env, cwd=config.LAB_PROJECT, log=log, cpus=lab.cpu_plan.server)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"microbench {task} took longer than {timeout:.0f} s and was stopped.") from None
        finally:  # an interrupted kernel must not leave it running; an exited one is forgotten
            procs.stop(proc)
        if code != 0:
            raise RuntimeError(f"microbench {task} failed:\n"
                               + "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:]))
        return Microbench(json.loads(result.read_text()))


class Microbench(dict[str, Any]):
    """A task's result (the JSON object the child wrote), with readers for the
    ``middleware`` task: ``steps()``, ``paired(...)``, ``per_request_us(...)``, ``hops(...)``."""

    def steps(self) -> Any:
        return middleware_steps(self)

    def paired(self, interface: str, low: str, high: str, *, ratio: bool = False) -> tuple[float, float, float]:
        return paired(self, interface, low, high, ratio=ratio)

    def per_request_us(self, interface: str, name: str) -> float:
        return per_request_us(self, interface, name)

    def hops(self, interface: str, name: str) -> float:
        """Thread hops per request (both directions) of stack ``name`` under ``interface``;
        NaN when that stack's requests failed (``self["errors"]`` says why)."""
        h = self["hops"][interface].get(name)
        return math.nan if h is None else h["sync_to_async"] + h["async_to_sync"]


# -- reading the middleware task's result ---------------------------------------------


def paired(result: dict[str, Any], interface: str, low: str, high: str, *,
           ratio: bool = False) -> tuple[float, float, float]:
    """What going from prefix ``low`` to prefix ``high`` added per request (us), from the
    ``middleware`` task's result: the median over the rounds of the difference measured
    within each round, with its quartiles (median, q1, q3).  ``ratio=True``: the same for
    the ratio high / low instead of the difference."""
    names = result["configs"]
    i, j = names.index(low), names.index(high)
    values = sorted(row[j] / row[i] if ratio else row[j] - row[i] for row in result[interface])
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return median, q1, q3


def per_request_us(result: dict[str, Any], interface: str, name: str) -> float:
    """The median over the rounds of prefix ``name``'s microseconds per request."""
    return statistics.median(row[result["configs"].index(name)] for row in result[interface])


def middleware_steps(result: dict[str, Any]) -> Any:
    """One row per middleware of the stack: what adding it cost per request under WSGI and
    under ASGI (us: median of the paired differences, and their quartiles), and the thread
    hops per request it added under ASGI (exact counts)."""
    import pandas as pd

    names = result["configs"]
    hops = result["hops"]["asgi"]
    rows = []
    for low, high in zip(names, names[1:]):
        row: dict[str, Any] = {"middleware": high.removeprefix("+ ")}
        for interface in ("wsgi", "asgi"):
            median, q1, q3 = paired(result, interface, low, high)
            label = interface.upper()
            row |= {f"{label} added us": median, f"{label} q1 us": q1, f"{label} q3 us": q3}
        row["ASGI hops"] = sum(hops[high][h] - hops[low][h] for h in _HOPS)
        row["hooks"] = ", ".join(result["hooks"][row["middleware"]])
        rows.append(row)
    return pd.DataFrame(rows).set_index("middleware")


# -- the child side -------------------------------------------------------------------


def _per_call_us(call: Callable[[], Any], n: int) -> float:
    """Mean microseconds per call over ``n`` calls, the garbage collector paused (as
    ``timeit`` does), so one collection does not land on one configuration."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        gc.enable()


def _wsgi_handler(stack: list[str], path: str) -> Callable[[], Any]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=stack):
        handler = WSGIHandler()
    environ = RequestFactory()._base_environ(PATH_INFO=path, REQUEST_METHOD="GET",
                                             HTTP_HOST="127.0.0.1", SERVER_NAME="127.0.0.1")

    def call() -> None:
        response = handler(dict(environ), lambda status, headers, exc_info=None: None)
        b"".join(response)
        response.close()
        if not str(response.status_code).startswith("2"):
            raise RuntimeError(f"{path} answered {response.status_code} with {stack}")

    return call


def _asgi_handler(stack: list[str], path: str) -> Callable[[], Any]:
    from django.core.handlers.asgi import ASGIHandler
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=stack):
        handler = ASGIHandler()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    loop = asyncio.new_event_loop()

    async def one() -> None:
        status = []
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.get_running_loop().create_future()  # no disconnect: Django cancels this
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await handler(dict(scope), receive, send)
        if not status or status[0] >= 300:
            raise RuntimeError(f"{path} answered {status} with {stack}")

    return lambda: loop.run_until_complete(one())


_HANDLERS = {"wsgi": _wsgi_handler, "asgi": _asgi_handler}


def _mean_us(call: Callable[[], Any], n: int) -> float:
    """Mean microseconds per call over ``n`` calls (the caller pauses the collector)."""
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n * 1e6


_HOPS = ("sync_to_async", "async_to_sync")
_HOOKS = ("process_request", "process_view", "process_response", "process_template_response",
          "process_exception")


def _middleware(params: dict[str, Any]) -> dict[str, Any]:
    """Microseconds per request through Django's own WSGI and ASGI handlers (no server,
    no socket) for every prefix of ``stack``: "none", then one more middleware at a time
    (several need the ones before them: auth needs sessions), so a middleware's cost is
    the step it adds.

    ``rounds`` rounds, each timing every prefix for ``n_wsgi`` (``n_asgi``) requests, in
    an order rotated by one per round: the per-round samples are kept (``result[
    "wsgi"]``: rounds x prefixes), so a difference between two prefixes is taken within
    each round, where drift and a noisy neighbour hit both alike, and its median over
    the rounds is robust to the rounds a neighbour spoiled.

    Afterwards (the counters patch asgiref, so never while timing) the thread hops per
    request are counted exactly (``lab.instrument``) for every prefix and for each extra
    stack in ``count``; a stack whose requests fail records its exception instead.
    """
    path = params.get("path", "/l01/hello")
    stack = list(params["stack"])
    rounds = int(params["rounds"])
    prefixes: dict[str, list[str]] = {"none": []}
    for k, dotted in enumerate(stack, start=1):
        prefixes["+ " + dotted.rsplit(".", 1)[-1]] = stack[:k]
    names = list(prefixes)
    result: dict[str, Any] = {"path": path, "rounds": rounds, "stack": stack, "configs": names}
    from django.utils.module_loading import import_string

    # The hooks each middleware class defines (MiddlewareMixin runs the first three on
    # every request; the other two only for template responses and exceptions).
    result["hooks"] = {dotted.rsplit(".", 1)[-1]: [h for h in _HOOKS if hasattr(import_string(dotted), h)]
                       for dotted in stack}
    for interface, build in _HANDLERS.items():
        n = int(params[f"n_{interface}"])  # WSGI requests are ~10x cheaper: more of them
        calls = {name: build(s, path) for name, s in prefixes.items()}
        for call in calls.values():  # warm up: imports, URL resolver, first thread pools
            for _ in range(20):
                call()
        samples = []
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            gc.collect()  # once per round (a full collection costs tens of ms), then
            gc.disable()  # paused while timing, as timeit does
            try:
                timed = {name: _mean_us(calls[name], n) for name in order}
            finally:
                gc.enable()
            samples.append([timed[name] for name in names])
        result[interface] = samples

    from lab import instrument

    instrument.install()
    counted = {**prefixes, **params.get("count", {})}
    result["hops"] = {interface: {} for interface in _HANDLERS}
    result["errors"] = {interface: {} for interface in _HANDLERS}
    for interface, build in _HANDLERS.items():
        for name, s in counted.items():
            try:
                call = build(list(s), path)
                call()  # the first request may import or start pools: not counted
                before = instrument.snapshot()
                for _ in range(5):
                    call()
                after = instrument.snapshot()
            except Exception as exc:  # noqa: BLE001 - a broken stack is a result here
                result["errors"][interface][name] = f"{type(exc).__name__}: {exc}"
                continue
            result["hops"][interface][name] = {h: (after[h] - before[h]) / 5 for h in _HOPS}
    return result


def _serializers(params: dict[str, Any]) -> dict[str, Any]:
    """Microseconds to turn N pre-fetched items into response bytes, per framework
    (``api.l06.SERIALIZERS``), by size; under ``"rows"``, at the largest size, the query
    plus building its row objects, dicts or model instances (``api.l06.ROWS``).  Repeats
    are interleaved, so drift hits every framework alike; the median is kept."""
    from api.l06 import ROWS, SERIALIZERS, fetch

    repeats = int(params["repeats"])

    def medians(calls: dict[str, Callable[[], Any]], n: int) -> dict[str, float]:
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                samples[name].append(_per_call_us(call, n))
        return {name: statistics.median(v) for name, v in samples.items()}

    result: dict[str, Any] = {}
    for size in params["sizes"]:
        calls = {}
        for name, serialize in SERIALIZERS.items():
            data = fetch(name, size)  # rows as that framework's view gets them
            serialize(data)  # warm
            calls[name] = lambda serialize=serialize, data=data: serialize(data)
        result[str(size)] = medians(calls, max(5, int(params["budget"] // max(size, 1))))
    size = max(params["sizes"])
    rows = {name: (lambda build=build: build(size)) for name, build in ROWS.items()}
    for call in rows.values():  # warm
        call()
    result["rows"] = {"items": size, **medians(rows, max(5, int(params["budget"] // size // 4)))}
    return result


_TASKS = {"middleware": _middleware, "serializers": _serializers}


def _main() -> None:
    params, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    import django

    django.setup()
    out.write_text(json.dumps(_TASKS[params["task"]](params)))


if __name__ == "__main__":
    _main()
