"""The notebooks' exercises, with their hints and solutions kept out of the learner's
sight (as Kaggle's learntools does): a notebook cell shows the question, the answer line
and the check; ``q.hint()`` and ``q.solution()`` reveal the rest on request.

    q1 = nb.exercise("hops", hops)     # builds the question from this run's data
    my_answer = ...
    q1.check(my_answer)
    q1.hint(); q1.solution()           # on request

Each exercise is one function below, registered for its notebook: it receives what the
notebook measured and returns an ``Exercise`` whose expected answer comes from this run.
A notebook's hidden solution cell calls ``q1.verify(reference)``, which proves that the
checker accepts the reference answer and prints nothing (so "Run all" shows no answer).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lessons.notebook import Notebook

__all__ = ["Exercise", "ask", "EXERCISES"]

Checker = Callable[[Any], tuple[bool, str]]


class Exercise:
    """One question with a checker.

    ``expected`` is the right answer (usually measured in this run) and ``close`` how
    near a number must be (a fraction, 0.25 = within 25%); or give ``checker``, a
    function answer -> (ok, feedback) for anything else.
    """

    def __init__(self, name: str, question: str, *, expected: Any = None,
                 close: float | None = None, checker: Checker | None = None,
                 hint: str = "", solution: str = "", notebook: Notebook | None = None) -> None:
        self.name = name
        self.question = question
        self.expected = expected
        self.close = close
        self._checker = checker
        self._hint = hint
        self._solution = solution
        self._notebook = notebook
        self.last_ok: bool | None = None  # the last checked answer was right

    def check(self, answer: Any) -> None:
        """Print feedback on ``answer`` (and keep whether it was right in the notebook's
        record).  It returns nothing, so the cell shows only the feedback."""
        if answer is None or answer is Ellipsis:
            print("Not answered yet: replace the ... with your answer and run the cell again.")
            return
        ok, feedback = self._judge(answer)
        self.last_ok = ok
        print(("Correct! " if ok else "Not quite. ") + feedback)
        if self._notebook is not None:
            self._notebook.exercise_done(self.name, ok)

    def hint(self) -> None:
        print("Hint: " + (self._hint or "no hint for this one: re-read the experiment above."))

    def solution(self) -> None:
        print("Solution: " + (self._solution or f"{self.expected!r}"))

    def verify(self, reference: Any) -> None:
        """Assert that the checker accepts ``reference`` (the notebook's own answer),
        silently: the test runner proves the exercise is answerable without showing
        the answer to a learner who presses "Run all"."""
        ok, feedback = self._judge(reference)
        if not ok:
            raise AssertionError(f"exercise {self.name!r} rejects its own solution: {feedback}")

    def __repr__(self) -> str:
        return f"Exercise {self.name}: {self.question}"

    def _ipython_display_(self) -> None:
        print(f"Exercise: {self.question}\n(q.check(answer) checks it; q.hint() and q.solution() on request)")

    def _judge(self, answer: Any) -> tuple[bool, str]:
        if self._checker is not None:
            return self._checker(answer)
        exp = self.expected
        if isinstance(exp, (int, float)) and not isinstance(exp, bool) and self.close is not None:
            try:
                value = float(answer)
            except (TypeError, ValueError):
                return False, f"expected a number, got {answer!r}."
            ok = math.isclose(value, exp, rel_tol=self.close, abs_tol=1e-9)
            return ok, f"this run measured {exp:,.4g}; you said {value:,.4g}."
        if isinstance(exp, str) and isinstance(answer, str):
            ok = answer.strip().lower() == exp.strip().lower()
            return ok, ("" if ok else "Look again at the table above.")
        ok = answer == exp
        return ok, ("" if ok else "look again at the measurements above.")


# -- the registry ---------------------------------------------------------------------

Builder = Callable[..., Exercise]
EXERCISES: dict[tuple[str, str], Builder] = {}


def _exercise(notebook: str, name: str) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        EXERCISES[(notebook, name)] = build
        return build
    return register


def ask(nb: Notebook, name: str, *data: Any) -> Exercise:
    """Build notebook ``nb``'s exercise ``name`` from this run's ``data``."""
    try:
        build = EXERCISES[(nb.name, name)]
    except KeyError:
        known = [n for (book, n) in EXERCISES if book == nb.name]
        raise KeyError(f"{nb.name} has no exercise {name!r}; it has: {', '.join(known) or 'none'}.") from None
    q = build(*data)
    q.name, q._notebook = name, nb
    return q


# -- 01 -------------------------------------------------------------------------------

@_exercise("01_asgi_vs_wsgi", "hops")
def _hops(count: Callable[[str, str], int]) -> Exercise:
    return Exercise(
        "hops", "How many sync_to_async hops does an async def view make per request under uvicorn "
        "with the default middleware?",
        expected=count("ASGI, default middleware", "/l01/hello-async"),
        hint="Start from the sync view's number in the same row group: the view itself no longer hops.",
        solution="Read the row 'ASGI, default middleware', path /l01/hello-async, column sync_to_async.")


# -- 02 -------------------------------------------------------------------------------

@_exercise("02_production_server", "best-sync-workers")
def _best_sync_workers(sweep: Any) -> Exercise:
    """``sweep``: the sync sweep table (columns config = workers, rps)."""
    def near_best(answer: Any) -> tuple[bool, str]:
        row = sweep[sweep.config == answer]
        if row.empty:
            return False, f"the measured worker counts are {list(sweep.config)}."
        share = float(row.rps.iloc[0] / sweep.rps.max())
        return share >= 0.95, f"{answer} workers reached {share:.0%} of the best throughput."

    return Exercise(
        "best-sync-workers", "How many sync workers served the most requests per second on the "
        "server's core? (Any count within 5% of the best is accepted: the curve is flat "
        "near its top.)", checker=near_best,
        hint="Look at the sync workers' curve in the throughput plot: where does it stop rising?",
        solution="The worker count of the row with the highest rps in the sync sweep table.")


# -- 03 -------------------------------------------------------------------------------

@_exercise("03_async_views", "sync-ceiling")
def _sync_ceiling(measured_rps: float, delay_ms: int, clients: int) -> Exercise:
    return Exercise(
        "sync-ceiling", f"With {clients} clients calling the {delay_ms} ms API, how many requests per "
        "second did the def view under one gunicorn sync worker serve? (Within 25% of this run's "
        "number; work it out from the API's delay, then check the table.)",
        expected=measured_rps, close=0.25,
        hint=f"The worker holds one request at a time, and each waits {delay_ms} ms for the API.",
        solution=f"About 1000 / {delay_ms} = {1000 / delay_ms:.0f} req/s, whatever the number of "
                 f"clients: one request at a time (this run measured {measured_rps:,.0f}).")


# -- 04 -------------------------------------------------------------------------------

@_exercise("04_async_orm", "n-plus-one")
def _n_plus_one(limit: int) -> Exercise:
    return Exercise(
        "n-plus-one", f"With the default fetch mode, how many queries does /l04/orders?limit={limit} "
        "make per request?", expected=limit + 1,
        hint="One query for the orders, then one per order for its customer.",
        solution=f"1 + {limit} = {limit + 1} (and 2 with FETCH_PEERS).")


# -- 05 -------------------------------------------------------------------------------

@_exercise("05_middleware", "asgi-stack-cost")
def _asgi_stack_cost(total_asgi_us: float) -> Exercise:
    return Exercise(
        "asgi-stack-cost", "Under ASGI, how many microseconds per request did the whole default "
        "stack add in-process (Experiment 1)? Within 25%.", expected=total_asgi_us, close=0.25,
        hint="In the table of whole stacks (after the per-middleware plot), subtract the 'none' row "
             "from the 'default' row, ASGI column; or add up the ASGI column of the per-middleware "
             "table.",
        solution=f"About {total_asgi_us:,.0f} us, the median over the rounds of default minus none "
                 "taken within each round; stacks.loc['default', 'ASGI us per request'] - "
                 "stacks.loc['none', 'ASGI us per request'] (the difference of the two medians) "
                 "comes within 25% of it.")


# -- 06 -------------------------------------------------------------------------------

@_exercise("06_ninja_vs_drf", "fastest")
def _fastest(rps_by_framework: Any, items: int) -> Exercise:
    """``rps_by_framework``: req/s by framework name at the largest payload."""
    return Exercise(
        "fastest", f"At {items:,} items, which endpoint served the most requests per second? Answer "
        f"with its name as in the race table ({', '.join(map(str, rps_by_framework.index))}).",
        expected=str(rps_by_framework.idxmax()),
        hint=f"Look at the rows for {items:,} items in the race table (column rps), or at the req/s "
             "panel of the last race figure.",
        solution=f"The framework with the highest median req/s among the rows for {items:,} items of "
                 "the race table.")


# -- 07 -------------------------------------------------------------------------------

@_exercise("07_caching", "locmem-workers")
def _locmem_workers() -> Exercise:
    return Exercise(
        "locmem-workers", "With LocMem and 3 workers, at most how many misses would the 40 requests "
        "of Experiment 6 make?", expected=3,
        hint="Each worker process has its own cache and misses once.",
        solution="3: one per worker (fewer if a worker got no request).")


# -- 08 -------------------------------------------------------------------------------

@_exercise("08_db_connections", "pool-connections")
def _pool_connections(per_process: int) -> Exercise:
    """``per_process``: the connections one worker with ``"pool": True`` held (measured)."""
    return Exercise(
        "pool-connections", "A deployment runs 3 gunicorn sync workers with OPTIONS={\"pool\": True}. "
        "How many connections does PostgreSQL hold for it once every worker has served a request?",
        expected=3 * per_process,
        hint="Experiment 2's table: how many connections did one worker with Django's pool hold, "
             "early on and after the load? Each worker process has its own pool.",
        solution=f"3 x {per_process} = {3 * per_process}: each process opens its own psycopg_pool at "
                 "its first query, and opening the pool opens its min_size connections (psycopg_pool's "
                 "default 4, which is also its max_size).")


# -- 09 -------------------------------------------------------------------------------

@_exercise("09_streaming", "first-byte")
def _first_byte(first_byte_ms: Any) -> Exercise:
    """``first_byte_ms``: first-byte time by endpoint, under ASGI, at the largest size."""
    return Exercise(
        "first-byte", "Under uvicorn (ASGI), which endpoint sent the first byte of its body soonest "
        "for the largest response? Answer JsonResponse, stream, sync generator or stream, async generator.",
        expected=str(first_byte_ms.idxmin()),
        hint="Look at the first-body-byte column of the ASGI rows.",
        solution="The ASGI row with the smallest first-body-byte time.")


# -- 10 -------------------------------------------------------------------------------

@_exercise("10_profiling", "silk-cost-ms")
def _silk_cost_ms(cost: Any) -> Exercise:
    """``cost``: a Comparison with the labels "silk" and "no profiler": /l10/fast-orders on
    those servers, one connection."""
    added = cost.median("p50_ms", "silk") - cost.median("p50_ms", "no profiler")
    return Exercise(
        "silk-cost-ms", "By how many milliseconds does silk lengthen one /l10/fast-orders request "
        "at p50? (Within 25%.)", expected=added, close=0.25,
        hint="One connection: each p50 is one request's time. Subtract the 'no profiler' row's "
             "p50 from the 'silk' row's.",
        solution="cost.median('p50_ms', 'silk') - cost.median('p50_ms', 'no profiler').")


# -- 11 -------------------------------------------------------------------------------

@_exercise("11_quick_reference", "slowest-stage")
def _slowest_stage(p99_ms: Any) -> Exercise:
    """``p99_ms``: the p99 of each stage of the budget (ms), by stage name."""
    def near_slowest(answer: Any) -> tuple[bool, str]:
        if answer not in p99_ms.index:
            return False, f"answer with a stage's name as in the table: {', '.join(p99_ms.index)}."
        ok = bool(p99_ms[answer] >= 0.9 * p99_ms.max())
        return ok, (f"its p99 was {p99_ms[answer]:.3g} ms; the largest, {p99_ms.idxmax()}'s, "
                    f"{p99_ms.max():.3g} ms.")

    return Exercise(
        "slowest-stage", "Which stage of the request had the largest p99 on your machine? Answer with "
        "its name as in the budget table (any stage within 10% of the largest counts).",
        checker=near_slowest, hint="Read the p99 column of the budget table, not the p50 one: the "
        "stage that is slowest at the median need not be slowest in the tail.",
        solution="The stage with the largest value in the p99 (ms) column of the budget table.")


# -- 12 -------------------------------------------------------------------------------

@_exercise("12_your_project", "asgi-hops")
def _asgi_hops(audit: Any, path: str) -> Exercise:
    """``audit``: the notebook's ProjectAudit; ``path``: an endpoint it measured under uvicorn.
    The expected answer is the prediction for the project's MIDDLEWARE without its sync-only
    entries plus the view's own hops measured under the whole MIDDLEWARE; the notebook's
    hidden cell checks it against the lab's counters on a server with that MIDDLEWARE."""
    left_out, stack = audit.middleware_without("sync-only")
    is_async = bool(audit.route(path)["is_async"])
    own = audit.hops()["the view's own"].get(f"{path} under uvicorn", 0)
    expected = audit.predict_hops(stack, view_is_async=is_async) + own
    before = audit.endpoint(path, "uvicorn")["hops_per_request"]
    view = "an async def view" if is_async else "a def view"
    middleware = expected - 2 - (0 if is_async else 1) - own
    change = (f"{'adds' if expected > before else 'removes'} {abs(expected - before)}" if expected != before
              else "keeps the number of")

    def exact(answer: Any) -> tuple[bool, str]:
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return False, f"answer with a whole number, not {answer!r}."
        return value == expected, "" if value == expected else "count again, hook by hook (q1.hint())."

    return Exercise(
        "asgi-hops", f"Take the project's MIDDLEWARE without {left_out}. How many thread hops per "
        f"request would GET {path} ({view}) make under uvicorn? (It made {before} with the whole "
        "MIDDLEWARE.)", checker=exact,
        hint="Under ASGI every request makes 2 hops (the request_started signal, response.close()), "
             "a def view 1 more, and the view's own hops come on top (the hops table). A middleware that "
             "can run async does; a MiddlewareMixin one then runs each of its process_request and "
             "process_response through sync_to_async (1 hop each). A sync process_view is 1 hop whatever "
             "the chain's mode (Django adapts it to the async handler). A sync-only middleware switches "
             "the chain to sync at its place (1 hop there, 1 more where the chain returns to async, at the "
             "top at the latest), and the sync-capable ones listed before it then run sync, in one thread, "
             "with no hop for their process_request and process_response.",
        solution=f"{expected}: 2 (signal and close) + {0 if is_async else 1} (the view) + {own} (the view's "
                 f"own) + {middleware} for the middleware left, all of it now async (1 per process_request "
                 "and process_response of each MiddlewareMixin, 1 per sync process_view). "
                 f"Leaving out {left_out} {change} hops: a MiddlewareMixin class listed before a sync-only "
                 "middleware runs sync, and hops on each of its hooks once it runs async, so only middleware "
                 "written async-native (or a WSGI server for def views) removes them.")
