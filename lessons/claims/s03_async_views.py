"""Section 3, Async views: decided from notebook 03's records.

Every "use async for" / "use sync for" line of the guide is measured as a ``def`` view
against an ``async def`` view doing the same work, one worker each on one core; the
``def`` view both where it runs without a thread hop (gunicorn's sync worker, WSGI) and
beside the async view under the same ASGI server (uvicorn), where Django runs it in a
thread.  An ``async def`` view counts as *clearly faster* in a setting when its median
throughput is at least ``FASTER`` times the ``def`` view's.

Records read (``nb.record`` keys of 03_async_views); "rps" values are medians of the
interleaved repeats, lists hold one value per repeat:
  "guide view as written"  the guide's async view run as written (``nb.attempt``):
                           {"raised": "TypeError" | None, "message": ...}
  "external API"   {"connections": 50, "delay ms": 50, "rps": {"def view, gunicorn sync": ..,
                   "def view, uvicorn": .., "async def + httpx.AsyncClient, uvicorn": ..,
                   "async def + aiohttp, uvicorn": ..}}
  "parallel queries"  {"n": 3, "ms": 50, "sequential ms": [..], "gather ms": [..]}: the
                   wall time an async view measured for n async ORM queries of ms each
  "CRUD"           {"path": .., "rps": {"def view, gunicorn sync": .., "def view, uvicorn": ..,
                   "async def view, uvicorn": ..}}
  "CPU-bound"      {"cpu ms": 200, "after ms": 20, "cheap ms": {"async def CPU view, uvicorn":
                   [..], "def CPU view, uvicorn": [..], "def CPU view, gunicorn sync": [..]}}:
                   the latency of a cheap request sent ``after ms`` into the CPU-bound one
  "file I/O"       {"kb": 1024, "rps": {"def view, gunicorn sync": .., "def view, uvicorn": ..,
                   "async def view (asyncio.to_thread), uvicorn": ..}}
  "long polls"     {"polls": 20, "hold ms": 100, "makespan ms": {"async def, uvicorn": ..,
                   "def, uvicorn": .., "def, gunicorn sync": ..}, "threads per poll":
                   {"async def, uvicorn": .., "def, uvicorn": .., "def, gunicorn sync": ..}}
  "WebSocket"      {"connected": bool, "status": 500 | None, "error": .., "server log": ..}
  "blocking library"  {"requests": 10, "delay ms": 50, "makespan ms": {"async def, direct
                   call": [..], "async def, sync_to_async": [..], "def view, uvicorn": [..]}}:
                   one makespan per interleaved burst (the rule takes medians)
  "legacy code"    {"status": {"def view, gunicorn sync": 200, "def view, uvicorn": 200,
                   "async def view, uvicorn": 500}, "async error": "SynchronousOnlyOperation: .."}
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from lessons.claims._rules import Records, Verdict, claim, confirmed, depends, raised, refuted

NB = "03_async_views"

FASTER = 1.5        # "clearly faster" (section 1 uses the same factor); rps are medians of repeats
BLOCKS = 3.0        # a CPU-bound async view delays a cheap request >= 3x what a def view does
NO_OVERLAP = 0.6    # gathered / in turn: 1.0 = one after another, 1/n = all at once (0.33)
AT_ONCE = 4.0       # polls held at once (on average) to count as "held together"
ONE_AT_A_TIME = 1.5  # at most this many at once: served one after another

WSGI_DEF = "def view, gunicorn sync"
ASGI_DEF = "def view, uvicorn"

GUIDE_VIEW = (
    "async def async_view(request): # Parallel async operations / async with "
    "aiohttp.ClientSession() as session: api_task = session.get('https://api.example.com/data') "
    "/ # Async ORM (Django 4.1+) / items_task = Item.objects.all().aiterator() / api_response = "
    "await api_task / data = await api_response.json() / items = [item async for item in "
    "items_task] / return JsonResponse({'data': data, 'items': items})"
)


def _median(values: object) -> float:
    if isinstance(values, (int, float)):
        return float(values)
    return float(statistics.median(values))  # type: ignore[arg-type]


def _count(values: object) -> int:
    return 1 if isinstance(values, (int, float)) else len(values)  # type: ignore[arg-type]


def _async_vs_def(rps: Mapping[str, float], async_label: str) -> dict[str, float]:
    """The async view's throughput over the def view's, per setting."""
    return {"under WSGI": rps[async_label] / rps[WSGI_DEF],
            "under the same ASGI server": rps[async_label] / rps[ASGI_DEF]}


def _use_async(ratios: dict[str, float], text: str) -> Verdict:
    """Confirmed when the async view is clearly faster than the def view in both settings,
    refuted when in neither, depends (named) when in one."""
    faster = [setting for setting, x in ratios.items() if x >= FASTER]
    if len(faster) == len(ratios):
        return confirmed(text)
    if not faster:
        return refuted(text)
    return depends(text, when=f"the async view is clearly faster than a def view {faster[0]} only")


def _ratios_text(ratios: dict[str, float]) -> str:
    return (f"{ratios['under WSGI']:.2f}x the def view under gunicorn sync and "
            f"{ratios['under the same ASGI server']:.2f}x the def view under uvicorn")


@claim("async-view-as-written", section=3, notebook=NB, guide=GUIDE_VIEW,
       gives=("confirmed", "refuted"))
def async_view_as_written(r: Records) -> Verdict:
    """Refuted when the guide's view, run as written, raises; confirmed when it runs."""
    error = raised(r[NB]["guide view as written"])
    if error:
        return refuted(f"run as written (only the URL pointed at the lab's stand-in API) it raises {error}")
    return confirmed("run as written (only the URL pointed at the lab's stand-in API) it returns a response")


@claim("async-for-external-api", section=3, notebook=NB,
       guide="USE ASYNC FOR: External API calls (SYNC VIEW: Blocks worker during I/O; "
             "ASYNC VIEW: Non-blocking I/O)",
       gives=("confirmed", "refuted", "depends"))
def async_for_external_api(r: Records) -> Verdict:
    """The guide's async view (aiohttp, its client) against a def view calling the same
    API, at many concurrent clients: see ``_use_async``.  httpx's AsyncClient is in the
    evidence, not in the condition."""
    m = r[NB]["external API"]
    rps = m["rps"]
    aio = "async def + aiohttp, uvicorn"
    ratios = _async_vs_def(rps, aio)
    text = (f"{m['connections']} clients on a {m['delay ms']} ms API, one worker: the async view "
            f"with aiohttp (the guide's client) served {rps[aio]:,.0f} req/s, {_ratios_text(ratios)} "
            f"({rps[WSGI_DEF]:,.0f} and {rps[ASGI_DEF]:,.0f} req/s); with httpx.AsyncClient the "
            f"same view served {rps['async def + httpx.AsyncClient, uvicorn']:,.0f}")
    return _use_async(ratios, text)


@claim("async-parallel-queries", section=3, notebook=NB,
       guide="USE ASYNC FOR: Multiple database queries (run in parallel)",
       gives=("confirmed", "refuted"))
def async_parallel_queries(r: Records) -> Verdict:
    """Confirmed when gathering n async ORM queries in a view takes at most 0.6x the time
    of awaiting them in turn (all at once would be 1/n); refuted otherwise."""
    m = r[NB]["parallel queries"]
    seq, gather = _median(m["sequential ms"]), _median(m["gather ms"])
    ratio = gather / seq
    text = (f"{m['n']} async ORM queries of {m['ms']} ms each in an async view under uvicorn: "
            f"{gather:.0f} ms with asyncio.gather, {seq:.0f} ms awaited in turn ({ratio:.2f}x; "
            f"in parallel would be {1 / m['n']:.2f}x), medians of {len(m['gather ms'])}")
    return confirmed(text) if ratio <= NO_OVERLAP else refuted(text)


@claim("sync-for-crud", section=3, notebook=NB,
       guide="USE SYNC FOR: Simple CRUD operations",
       gives=("confirmed", "refuted", "depends"))
def sync_for_crud(r: Records) -> Verdict:
    """Async does not pay for simple CRUD: confirmed when the async view is clearly faster
    than the def view in neither setting, refuted when in both, depends when in one."""
    m = r[NB]["CRUD"]
    rps = m["rps"]
    label = "async def view, uvicorn"
    ratios = _async_vs_def(rps, label)
    text = (f"{m['path']}: the async view served {rps[label]:,.0f} req/s, {_ratios_text(ratios)} "
            f"({rps[WSGI_DEF]:,.0f} and {rps[ASGI_DEF]:,.0f} req/s)")
    faster = [setting for setting, x in ratios.items() if x >= FASTER]
    if not faster:
        return confirmed(text)
    if len(faster) == len(ratios):
        return refuted(text)
    return depends(text, when=f"the async view is clearly faster than a def view {faster[0]} only")


@claim("sync-for-cpu", section=3, notebook=NB,
       guide="USE SYNC FOR: CPU-bound processing",
       gives=("confirmed", "refuted"))
def sync_for_cpu(r: Records) -> Verdict:
    """Under an ASGI server a CPU-bound async view runs on the event loop: confirmed when
    a cheap request sent while it computes waits at least 3x longer than while the same
    work runs in a def view (which Django runs in a thread); refuted otherwise."""
    m = r[NB]["CPU-bound"]
    cheap = {k: _median(v) for k, v in m["cheap ms"].items()}
    on_loop, in_thread = cheap["async def CPU view, uvicorn"], cheap["def CPU view, uvicorn"]
    wsgi = cheap.get("def CPU view, gunicorn sync")
    text = (f"a cheap request sent {m['after ms']} ms into {m['cpu ms']} ms of CPU work took "
            f"{on_loop:.0f} ms when the work ran in an async view, {in_thread:.1f} ms when it ran in "
            f"a def view (same uvicorn worker; the GIL is shared)"
            + (f", {wsgi:.0f} ms behind a def view in one gunicorn sync worker" if wsgi is not None else ""))
    return confirmed(text) if on_loop >= BLOCKS * in_thread else refuted(text)


@claim("async-for-file-io", section=3, notebook=NB,
       guide="USE ASYNC FOR: File I/O operations",
       gives=("confirmed", "refuted", "depends"))
def async_for_file_io(r: Records) -> Verdict:
    """An async view reading a file (there is no async file read in asyncio: it goes to a
    thread) against a def view reading it: see ``_use_async``."""
    m = r[NB]["file I/O"]
    rps = m["rps"]
    label = "async def view (asyncio.to_thread), uvicorn"
    ratios = _async_vs_def(rps, label)
    text = (f"reading {m['kb']:,} KiB of a cached file per request: the async view served "
            f"{rps[label]:,.0f} req/s, {_ratios_text(ratios)} ({rps[WSGI_DEF]:,.0f} and "
            f"{rps[ASGI_DEF]:,.0f} req/s)")
    return _use_async(ratios, text)


@claim("async-for-websockets", section=3, notebook=NB,
       guide="USE ASYNC FOR: WebSocket connections",
       gives=("confirmed", "refuted"))
def async_for_websockets(r: Records) -> Verdict:
    """Confirmed when a WebSocket client connects to the lab's Django under an ASGI server;
    refuted when the handshake is refused."""
    m = r[NB]["WebSocket"]
    if m["connected"]:
        return confirmed("a WebSocket client connected to Django under uvicorn")
    server = f"; the server logged {m['server log']}" if m.get("server log") else ""
    return refuted(f"a WebSocket handshake to Django under uvicorn (an async view at that path) "
                   f"was refused: {m['error']}{server}")


@claim("async-for-long-polling", section=3, notebook=NB,
       guide="USE ASYNC FOR: Long-polling endpoints",
       gives=("confirmed", "refuted", "depends"))
def async_for_long_polling(r: Records) -> Verdict:
    """Many polls held open on one worker.  Against each def-view setting the async view
    is better when it holds the polls together while the def view serves them one at a
    time, or when it needs at most half the threads per held poll.  Confirmed when better
    than both settings, refuted when better than neither, depends when one."""
    m = r[NB]["long polls"]
    k, hold = m["polls"], m["hold ms"]
    at_once = {cfg: k * hold / span for cfg, span in m["makespan ms"].items()}
    threads = m["threads per poll"]
    mine = "async def, uvicorn"
    settings = {"under WSGI": "def, gunicorn sync", "under the same ASGI server": "def, uvicorn"}

    def better(other: str) -> bool:
        if at_once[mine] < AT_ONCE:
            return False
        return at_once[other] <= ONE_AT_A_TIME or threads[mine] <= 0.5 * threads[other]

    wins = [setting for setting, other in settings.items() if better(other)]
    text = (f"{k} polls of {hold} ms sent together to one worker: held {at_once[mine]:.1f} at once "
            f"by the async view ({threads[mine]:.2f} server threads per held poll), "
            f"{at_once['def, uvicorn']:.1f} by a def view under uvicorn "
            f"({threads['def, uvicorn']:.2f} threads each), {at_once['def, gunicorn sync']:.1f} by a "
            f"def view under gunicorn sync")
    if len(wins) == len(settings):
        return confirmed(text)
    if not wins:
        return refuted(text)
    return depends(text, when=f"the async view is better than a def view {wins[0]} only")


@claim("sync-for-sync-libraries", section=3, notebook=NB,
       guide="USE SYNC FOR: Third-party libraries without async support",
       gives=("confirmed", "refuted", "depends"))
def sync_for_sync_libraries(r: Records) -> Verdict:
    """A blocking library (no async API) called from views, many requests at once (the
    median makespan of repeated, interleaved bursts).
    Confirmed when the direct call in an async view serialises the requests (at most 1.5
    at once) and wrapping it in sync_to_async is not clearly faster than a def view;
    depends when the wrapped call is clearly faster; refuted when the direct call does
    not serialise (the async view would be fine as written)."""
    m = r[NB]["blocking library"]
    k, delay = m["requests"], m["delay ms"]
    span = {label: _median(v) for label, v in m["makespan ms"].items()}
    direct, wrapped, plain = (span["async def, direct call"], span["async def, sync_to_async"],
                              span["def view, uvicorn"])
    direct_at_once = k * delay / direct
    text = (f"{k} requests at once, each calling a {delay} ms API with urllib (no async API): "
            f"{direct:.0f} ms for all when an async view calls it directly ({direct_at_once:.1f} at "
            f"once: the event loop waits), {wrapped:.0f} ms through sync_to_async, {plain:.0f} ms "
            f"from a def view (medians of {_count(m['makespan ms']['def view, uvicorn'])} bursts)")
    if direct_at_once > ONE_AT_A_TIME:
        return refuted(text)
    if plain >= FASTER * wrapped:
        return depends(text, when="an async view that wraps every call in sync_to_async is clearly "
                                  "faster than a def view")
    return confirmed(text)


@claim("sync-for-legacy-code", section=3, notebook=NB,
       guide="USE SYNC FOR: Legacy code compatibility",
       gives=("confirmed", "refuted"))
def sync_for_legacy_code(r: Records) -> Verdict:
    """The same sync ORM code (unchanged legacy code) called from views: confirmed when
    it fails in an async view and answers 200 from a def view under both servers;
    refuted otherwise."""
    m = r[NB]["legacy code"]
    status = m["status"]
    async_status = status["async def view, uvicorn"]
    defs_ok = all(v == 200 for k, v in status.items() if k.startswith("def view"))
    text = (f"the same sync ORM call answered {status[WSGI_DEF]} from a def view under gunicorn sync, "
            f"{status[ASGI_DEF]} under uvicorn, and {async_status} from an async view"
            + (f" ({m['async error']})" if m.get("async error") else ""))
    return confirmed(text) if defs_ok and async_status >= 500 else refuted(text)
