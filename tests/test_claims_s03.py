"""Section 3's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

NB = "03_async_views"
WSGI, ASGI = "def view, gunicorn sync", "def view, uvicorn"


def _guide_view(error: str | None) -> dict:
    return {NB: {"guide view as written": {"raised": error, "message": "Object of type Item is not JSON serializable" if error else ""}}}


def _api(def_wsgi: float, def_asgi: float, aiohttp: float, httpx: float = 50.0) -> dict:
    return {NB: {"external API": {"connections": 50, "delay ms": 50, "rps": {
        WSGI: def_wsgi, ASGI: def_asgi, "async def + httpx.AsyncClient, uvicorn": httpx,
        "async def + aiohttp, uvicorn": aiohttp}}}}


def _queries(sequential: float, gather: float) -> dict:
    return {NB: {"parallel queries": {"n": 3, "ms": 50, "sequential ms": [sequential, sequential + 5, sequential - 5],
                                      "gather ms": [gather, gather + 3, gather - 3]}}}


def _crud(def_wsgi: float, def_asgi: float, async_asgi: float) -> dict:
    return {NB: {"CRUD": {"path": "/l01/items?limit=10", "rps": {
        WSGI: def_wsgi, ASGI: def_asgi, "async def view, uvicorn": async_asgi}}}}


def _cpu(on_loop: float, in_thread: float) -> dict:
    return {NB: {"CPU-bound": {"cpu ms": 200, "after ms": 20, "cheap ms": {
        "async def CPU view, uvicorn": [on_loop, on_loop + 10, on_loop - 10],
        "def CPU view, uvicorn": [in_thread, in_thread + 1, in_thread - 1],
        "def CPU view, gunicorn sync": [190, 200, 210]}}}}


def _file(def_wsgi: float, def_asgi: float, async_asgi: float) -> dict:
    return {NB: {"file I/O": {"kb": 1024, "rps": {
        WSGI: def_wsgi, ASGI: def_asgi, "async def view (asyncio.to_thread), uvicorn": async_asgi}}}}


def _ws(connected: bool) -> dict:
    return {NB: {"WebSocket": {"connected": connected, "status": None if connected else 500,
                               "error": None if connected else "InvalidStatus: server rejected WebSocket connection: HTTP 500",
                               "server log": None if connected else "ValueError: Django can only handle ASGI/HTTP connections, not websocket."}}}


def _polls(spans: tuple[float, float, float], threads: tuple[float, float, float]) -> dict:
    """(async def uvicorn, def uvicorn, def gunicorn sync) makespans and threads per poll;
    20 polls of 100 ms: 2000 ms is one at a time, about 100 ms all at once."""
    keys = ("async def, uvicorn", "def, uvicorn", "def, gunicorn sync")
    return {NB: {"long polls": {"polls": 20, "hold ms": 100, "makespan ms": dict(zip(keys, spans)),
                                "threads per poll": dict(zip(keys, threads))}}}


def _blocking(direct: float, wrapped: float, plain: float) -> dict:
    return {NB: {"blocking library": {"requests": 10, "delay ms": 50, "makespan ms": {
        "async def, direct call": [direct, direct + 40, direct - 30],
        "async def, sync_to_async": [wrapped, wrapped + 150, wrapped - 5],   # one noisy burst
        "def view, uvicorn": [plain, plain - 4, plain + 160]}}}}


def _legacy(async_status: int, def_asgi: int = 200) -> dict:
    return {NB: {"legacy code": {"status": {WSGI: 200, ASGI: def_asgi, "async def view, uvicorn": async_status},
                                 "async error": "SynchronousOnlyOperation: You cannot call this from an async context"}}}


EXAMPLES: Examples = {
    "async-view-as-written": [
        (_guide_view("TypeError"), "refuted"),
        (_guide_view(None), "confirmed"),
    ],
    "async-for-external-api": [
        (_api(16, 225, 467), "confirmed"),        # clearly faster than both def views
        (_api(16, 400, 467), "depends"),          # a def view under ASGI (threads) keeps up
        (_api(400, 420, 467), "refuted"),         # neither: the waits were not the limit
    ],
    "async-parallel-queries": [
        (_queries(190, 180), "refuted"),          # one after another (Django 6.1)
        (_queries(190, 70), "confirmed"),         # a truly async backend would overlap them
    ],
    "sync-for-crud": [
        (_crud(250, 250, 280), "confirmed"),      # async no faster
        (_crud(250, 150, 280), "depends"),        # faster than a def view under ASGI only
        (_crud(150, 150, 280), "refuted"),
    ],
    "sync-for-cpu": [
        (_cpu(200, 15), "confirmed"),
        (_cpu(200, 150), "refuted"),              # the def view blocked the cheap request too
    ],
    "async-for-file-io": [
        (_file(520, 500, 540), "refuted"),
        (_file(300, 500, 540), "depends"),
        (_file(300, 300, 540), "confirmed"),
    ],
    "async-for-websockets": [
        (_ws(False), "refuted"),
        (_ws(True), "confirmed"),
    ],
    "async-for-long-polling": [
        (_polls((120, 130, 2000), (1.0, 1.0, 0.0)), "depends"),     # Django gives every request a thread
        (_polls((120, 130, 2000), (0.0, 1.0, 0.0)), "confirmed"),   # no thread per async poll
        (_polls((2000, 130, 2000), (0.0, 1.0, 0.0)), "refuted"),    # the async view did not hold them
    ],
    "sync-for-sync-libraries": [
        (_blocking(700, 110, 120), "confirmed"),
        (_blocking(700, 60, 120), "depends"),
        (_blocking(110, 110, 120), "refuted"),
    ],
    "sync-for-legacy-code": [
        (_legacy(500), "confirmed"),
        (_legacy(200), "refuted"),
        (_legacy(500, def_asgi=500), "refuted"),
    ],
}


def test_section_3_rules() -> None:
    check_examples(EXAMPLES)
