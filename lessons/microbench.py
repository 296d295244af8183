"""In-process micro-benchmarks of the lab project, in their own pinned process.

Some costs are too small to see over HTTP next to the network and the server: one
middleware, one serializer per item.  These run the lab project's Django directly
(no server, no socket) many times and report microseconds per request, in a child
process pinned to the server's core, with the lab's database and cache, so the
notebook kernel's own Django (if any) and its event loop stay out of the numbers.

    python -m lessons.microbench '{"task": "middleware", ...}'   # prints one JSON object
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from lessons import config, cpus

__all__ = ["run"]


def run(lab: Any, task: str, *, env: dict[str, str] | None = None, timeout: float = 300,
        **params: Any) -> dict[str, Any]:
    """Run ``task`` in a child process pinned to the server's CPU; return its result."""
    child_env = {
        **os.environ,
        "PYTHONPATH": str(config.LAB_PROJECT),
        "DJANGO_SETTINGS_MODULE": "lab.settings",
        "LAB_DATABASE_URL": lab.services.database_url,
        "LAB_REDIS_URL": lab.services.redis_url,
        "LAB_SECRET_KEY": lab._secret_key(),
        "LAB_MIDDLEWARE": "none",
        **(env or {}),
    }
    proc = subprocess.Popen([sys.executable, "-m", "lessons.microbench", json.dumps({"task": task, **params})],
                            env=child_env, cwd=config.LAB_PROJECT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    cpus.pin(lab.cpu_plan.server, proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"microbench {task} took longer than {timeout:.0f} s and was stopped.") from None
    except BaseException:  # an interrupted kernel must not leave it running
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"microbench {task} failed:\n" + "\n".join(err.strip().splitlines()[-15:]))
    return json.loads(out.strip().splitlines()[-1])


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


def _wsgi_handler(stack: list[str]) -> Callable[[], Any]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=stack):
        handler = WSGIHandler()
    environ = RequestFactory()._base_environ(PATH_INFO=_PATH, REQUEST_METHOD="GET",
                                             HTTP_HOST="127.0.0.1", SERVER_NAME="127.0.0.1")

    def call() -> None:
        response = handler(dict(environ), lambda status, headers, exc_info=None: None)
        b"".join(response)
        response.close()
        if not str(response.status_code).startswith("2"):
            raise RuntimeError(f"{_PATH} answered {response.status_code} with {stack}")

    return call


def _asgi_handler(stack: list[str]) -> Callable[[], Any]:
    from django.core.handlers.asgi import ASGIHandler
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=stack):
        handler = ASGIHandler()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": _PATH, "raw_path": _PATH.encode(), "query_string": b"",
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
            raise RuntimeError(f"{_PATH} answered {status} with {stack}")

    return lambda: loop.run_until_complete(one())


_PATH = "/l01/hello"


def _middleware(params: dict[str, Any]) -> dict[str, Any]:
    """Microseconds per request through Django's handler, WSGI and ASGI, for every
    prefix of ``stack`` (so each middleware's cost is the step it adds: several need
    the ones before them, auth needs sessions) and for the other named ``stacks``."""
    global _PATH
    _PATH = params.get("path", "/l01/hello")
    repeats = int(params["repeats"])
    stack = list(params["stack"])
    configs: dict[str, list[str]] = {"none": []}
    for k, dotted in enumerate(stack, start=1):
        configs["+ " + dotted.rsplit(".", 1)[-1]] = stack[:k]
    configs.update(params.get("stacks", {}))
    result: dict[str, Any] = {"repeats": repeats, "path": _PATH}
    for interface, build in (("wsgi", _wsgi_handler), ("asgi", _asgi_handler)):
        n = int(params[f"n_{interface}"])  # WSGI requests are ~10x cheaper: more of them
        calls = {name: build(stack) for name, stack in configs.items()}
        for call in calls.values():  # warm up: imports, URL resolver, first thread pools
            for _ in range(50):
                call()
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(repeats):  # interleaved, so drift hits every config alike
            for name, call in calls.items():
                samples[name].append(_per_call_us(call, n))
        result[interface] = {name: statistics.median(v) for name, v in samples.items()}
    return result


def _serializers(params: dict[str, Any]) -> dict[str, Any]:
    """Microseconds to turn N pre-fetched items into response bytes, per framework."""
    from api.l06 import SERIALIZERS, fetch

    result: dict[str, Any] = {}
    for size in params["sizes"]:
        n = max(5, int(params["budget"] // max(size, 1)))
        result[str(size)] = {}
        for name, serialize in SERIALIZERS.items():
            data = fetch(name, size)  # rows as that framework's view gets them
            serialize(data)  # warm
            result[str(size)][name] = statistics.median(
                _per_call_us(lambda: serialize(data), n) for _ in range(int(params["repeats"])))
    return result


_TASKS = {"middleware": _middleware, "serializers": _serializers}


def _main() -> None:
    params = json.loads(sys.argv[1])
    import django

    django.setup()
    print(json.dumps(_TASKS[params["task"]](params)))


if __name__ == "__main__":
    _main()
