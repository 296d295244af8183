"""The lab's scenario as a locustfile, for load from more than one machine.

``write_locustfile(url, paths, rate=, slo_ms=, out=)`` returns (and with ``out`` writes) a
self-contained locustfile: the paths requested in turn, pacing that approximates the lab's
open-loop rate, and the SLO (p99 under ``slo_ms`` with no failed request) checked at the
end of the run, which sets the master's exit status.  ``command_lines`` gives the argv of
Locust's distributed mode (one master, N workers).  ``python -m lessons locustfile`` is the
command (``lessons/__main__.py``); ``lessons audit --locustfile`` calls ``write_locustfile``.

Written for the pinned locust (requirements.txt); what the file says about Locust was read
in that version's source (``locust/stats.py``, ``user/wait_time.py``, ``contrib/fasthttp.py``,
``runners.py``, ``main.py``).  This module never imports locust: importing it
monkey-patches the whole interpreter with gevent.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

__all__ = ["Scenario", "write_locustfile", "command_lines", "describe_commands", "LOCUST_VERSION"]

LOCUST_VERSION = "2.47.0"   # the pin in requirements.txt the generated file was written for
CLOSED_LOOP_USERS = 16      # without a rate: as many users as `lessons bench` has connections
INTERVAL_SLOS = 10          # a user's interval is at least this many SLOs (see the template)
TIMEOUT_S = 2.0             # the lab's per-request timeout (lessons.measure.launch.run)
MASTER_PORT = 5557          # Locust's default --master-bind-port


@dataclass(frozen=True)
class Scenario:
    """What the locustfile reproduces, checked: a base URL, paths, a total rate (None:
    closed loop) and the SLO."""

    url: str
    paths: tuple[str, ...]
    rate: float | None
    slo_ms: float

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if (parts.scheme not in ("http", "https") or not parts.hostname or parts.query
                or not _plain(self.url)):
            raise ValueError(f"the URL is http(s)://host[:port][/prefix], not {self.url!r}.")
        if not self.paths:
            raise ValueError("give at least one path (--path /api/items).")
        for p in self.paths:
            if not p.startswith("/") or not _plain(p):
                raise ValueError(f"a path starts with / and is ASCII without spaces, quotes or "
                                 f"backslashes (percent-encode them), not {p!r}.")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"the rate is a positive number of requests per second, not {self.rate!r}.")
        if not (math.isfinite(self.slo_ms) and self.slo_ms > 0):
            raise ValueError(f"the SLO is a positive number of milliseconds, not {self.slo_ms!r}.")

    @property
    def users(self) -> int:
        """Users to run: closed loop, CLOSED_LOOP_USERS; open loop, the fewest that keep
        each user's interval at least INTERVAL_SLOS times the SLO."""
        if self.rate is None:
            return CLOSED_LOOP_USERS
        max_per_user = 1000.0 / (INTERVAL_SLOS * self.slo_ms)
        return max(1, math.ceil(self.rate / max_per_user - 1e-9))

    @property
    def interval_s(self) -> float | None:
        """Seconds between one user's requests (None: closed loop)."""
        return None if self.rate is None else self.users / self.rate


def _plain(text: str) -> bool:
    """ASCII without spaces, quotes or backslashes: safe in the file's code and docstring."""
    return text.isascii() and not any(c.isspace() or c in "\"'\\" for c in text)


def write_locustfile(url: str, paths: Sequence[str], *, rate: float | None, slo_ms: float,
                     out: Path | None) -> str:
    """The locustfile's text for ``url`` + each of ``paths`` (in turn) at ``rate`` req/s
    in total (None: closed loop) with the SLO p99 < ``slo_ms``; written to ``out`` when
    given.  ValueError (one sentence) for a bad URL, path, rate or SLO."""
    sc = Scenario(url.rstrip("/"), tuple(paths), None if rate is None else float(rate), float(slo_ms))
    name = out.name if out is not None else "locustfile.py"
    master, worker = command_lines(sc, name, workers=2, master_host="MASTER_HOST")
    if sc.rate is None:
        load = (f"closed loop, {sc.users} users each sending its next request as soon as the "
                f"previous response is complete")
    else:
        load = (f"{sc.rate:g} requests/s in total: {sc.users} users, each sending one "
                f"request every {sc.interval_s * 1000:.3g} ms")
    path_list = ", ".join(sc.paths) + (" (in turn)" if len(sc.paths) > 1 else "")
    text = _TEMPLATE.substitute(
        VERSION=LOCUST_VERSION, URL=repr(sc.url), PATHS=repr(sc.paths), RATE=repr(sc.rate),
        USERS=sc.users, SLO_MS=repr(sc.slo_ms), TIMEOUT_S=repr(TIMEOUT_S),
        LOOP_TEXT=_CLOSED_TEXT if sc.rate is None else _OPEN_TEXT, LOAD=load,
        SLO_TEXT=f"{sc.slo_ms:g}", PATH_LIST=path_list, BASE=sc.url,
        MASTER=shlex.join(master), WORKER=shlex.join(worker))
    compile(text, name, "exec")  # a template error fails here, not on the load machines
    if out is not None:
        Path(out).write_text(text)
    return text


def command_lines(scenario: Scenario, locustfile: str, *, workers: int, master_host: str,
                  port: int = MASTER_PORT, run_time_s: int = 60,
                  csv: str | None = "locust") -> tuple[list[str], list[str]]:
    """(master argv, worker argv) for Locust's distributed mode, headless: the master
    listens on ``master_host``:``port``, waits for ``workers`` workers, spawns every user
    within about a second, runs ``run_time_s`` (whole seconds: Locust's -t takes no
    fraction) and exits with the SLO check's status; each worker (start ``workers`` of
    them) fetches the locustfile from the master (``-f -``)."""
    if int(run_time_s) != run_time_s or run_time_s < 1 or workers < 1:
        raise ValueError("the run time is a whole number of seconds and there is at least one worker.")
    users = scenario.users
    master = ["locust", "-f", locustfile, "--master", "--headless",
              "--master-bind-host", master_host, "--master-bind-port", str(port),
              "--expect-workers", str(workers), "-u", str(users), "-r", str(users),
              "-t", f"{int(run_time_s)}s"]
    if csv:
        master += ["--csv", csv]
    worker = ["locust", "-f", "-", "--worker", "--master-host", master_host,
              "--master-port", str(port)]
    return master, worker


def describe_commands(scenario: Scenario, locustfile: str, *, workers: int, master_host: str,
                      run_time_s: int) -> str:
    """The command lines as a reader runs them, with one comment line each."""
    master, worker = command_lines(scenario, locustfile, workers=workers,
                                   master_host=master_host, run_time_s=run_time_s)
    n = f"{workers} worker{'s' if workers > 1 else ''}"
    return "\n".join([
        f"# The master ({master_host} must be an address of it that the workers reach); "
        f"it starts once {n} connected, runs {run_time_s} s, and exits 0 "
        f"when p99 < {scenario.slo_ms:g} ms with no failed request, 1 otherwise:",
        shlex.join(master),
        f"# Then {n} on the load machines, each started so (one process uses one core; "
        f"each fetches the locustfile from the master):",
        shlex.join(worker),
    ])


_OPEN_TEXT = f"""\
How this differs from the lab's open-loop client (python -m lessons bench --rate)
* Locust is closed loop per user: a user sends its next request only after the previous
  response is complete.  The lab sends each request at its due time, on another connection
  when one is busy, and times it from that due time.
* Pacing: each user has its own schedule, one request every USERS / RATE seconds (at least
  {INTERVAL_SLOS} times the SLO), starting at a random point of its first interval so that the
  users' requests interleave.  The wait before a request is its due time less now, never
  negative.  While every response is faster than the interval, the total is RATE
  requests/s.  A slower response delays that user's next requests; the user then sends
  them back to back until it is on schedule again.  (Locust's constant_throughput(r) is
  constant_pacing(1 / r), whose wait is the interval less the time since the previous
  wait ended: it skips the sends a slow response made it miss instead of catching up, and
  it would absorb a random start delay into the first wait, so users started together
  would stay in step.)
* Latency: Locust times each request from when it was actually sent, so the time a
  request waited past its due time (behind a slow response, or on a busy worker) is in
  none of its response times (coordinated omission).  The SLO check below times each request from its due time
  instead (send lag + Locust's response time), as the lab does; what still differs is
  that at most USERS requests are in flight, where the lab opens more connections when all
  are busy.  The end of the run also counts the sends more than LATE_MS after their due
  time (a fifth of the SLO: for 10 ms, the lab's 2 ms limit on its own send lag)."""

_CLOSED_TEXT = """\
How this differs from the lab's closed-loop client (python -m lessons bench -c USERS)
* Both are closed loop: each user (each of the lab's connections) sends its next request
  as soon as the previous response is complete (here Locust's default wait, constant(0)).
  Throughput is what the server gives; a stall delays only the requests in flight, so the
  percentiles hide it (coordinated omission).  Give --rate for a paced scenario.
* Latency: from when each request was sent (Locust's response time), as the lab's closed
  loop measures it."""

_TEMPLATE = Template('''\
"""Locust scenario exported by Django p99 Lab (`python -m lessons locustfile`), for locust==$VERSION.

Scenario: GET $PATH_LIST on $BASE,
$LOAD.
SLO: p99 < $SLO_TEXT ms with no failed request, checked when the run ends.

Distributed and headless (one master, N workers; put the master's address for MASTER_HOST):
    $MASTER
    $WORKER
Start as many workers as --expect-workers says.  The master's exit status is 0 when the
SLO held, 1 when it did not, when a request failed or when none was sent.  Keep -u as
printed: the rate is the number of users times each user's own rate, whatever the number
of workers.

$LOOP_TEXT
* Timing: FastHttpUser (geventhttpclient) measures from before the request is sent to
  after the body is read, with time.perf_counter: a user's first request includes opening
  its connection, and on a worker short of CPU the time also includes waiting for the
  gevent loop (Locust warns when a worker passes 90% CPU).
* The SLO check counts, for every request, whether its exact latency reached the SLO, and
  passes when p99 < SLO with p99 the ceil(0.99 n)-th fastest latency, as the lab computes
  it (numpy's inverted_cdf).  Locust's own p99, printed beside it, comes from its
  histogram of response times: each rounded to a whole ms below 100 ms (Python's round():
  a half goes to the even neighbour), to 10 ms below 1 s, to 100 ms below 10 s, to 1 s
  above; the percentile is the bucket of the (int(0.99 n) + 1)-th fastest request.
* Failures: a connection error, a socket silent for TIMEOUT_S seconds (geventhttpclient's
  connect and read timeouts; the lab's timeout is on the whole response), or a status
  outside 2xx (redirects are not followed), as the lab counts errors and non-2xx.
  Requests still in flight when the run stops are not counted.
* No warm-up is discarded (the lab leaves its first second of load unmeasured): every
  request counts, each user's first included.  With --reset-stats on the master and the
  workers, Locust's counts and this file's restart when spawning completes.
"""

import itertools
import logging
import random
import time

import gevent
from locust import FastHttpUser, events, task
from locust.runners import WorkerRunner

URL = $URL
PATHS = $PATHS
RATE = $RATE              # requests/s in total; None: closed loop
USERS = $USERS                # run with -u USERS
SLO_MS = $SLO_MS
TIMEOUT_S = $TIMEOUT_S
LATE_MS = SLO_MS / 5
INTERVAL_S = USERS / RATE if RATE else 0.0   # one user's interval between requests
HEADERS = {"Accept-Encoding": "identity", "User-Agent": "locust (django-p99-lab export)"}

log = logging.getLogger("lab_slo")
_paths = itertools.cycle(PATHS)   # this process's users take the paths in turn
# Counted in this process since its last report to the master (the master adds the reports):
# requests sent, sent late, answered or failed, and those whose latency reached the SLO when
# timed from the due time (the lab's way) and from the send (Locust's way).
tally = {"sent": 0, "late": 0, "requests": 0, "over_slo": 0, "over_slo_from_send": 0}
_env = None


class LabScenario(FastHttpUser):
    host = URL
    network_timeout = TIMEOUT_S
    connection_timeout = TIMEOUT_S

    def on_start(self):
        self.due = time.perf_counter() + random.random() * INTERVAL_S
        gevent.sleep(max(0.0, self.due - time.perf_counter()))

    def wait_time(self):
        return max(0.0, self.due - time.perf_counter()) if RATE else 0.0

    @task
    def get(self):
        path = next(_paths)
        lag_ms = 0.0
        if RATE:
            lag_ms = max(0.0, (time.perf_counter() - self.due) * 1000.0)
            tally["late"] += lag_ms > LATE_MS
            self.due += INTERVAL_S
        tally["sent"] += 1
        with self.client.get(path, name=path, headers=HEADERS, allow_redirects=False,
                             catch_response=True, context={"lab_lag_ms": lag_ms}) as response:
            if getattr(response, "error", None) is None and not 200 <= response.status_code < 300:
                response.failure(f"HTTP {response.status_code}, not 2xx")


@events.init.add_listener
def _on_init(environment, **_kw):
    global _env
    _env = environment
    options = environment.parsed_options
    users = getattr(options, "num_users", None)
    if RATE and users not in (None, USERS) and not isinstance(environment.runner, WorkerRunner):
        log.warning("This file paces each user at %g requests/s for %d users: -u %d makes "
                    "%g requests/s in total, not %g.", RATE / USERS, USERS, users,
                    users * RATE / USERS, RATE)


@events.request.add_listener
def _on_request(response_time=None, context=None, **_kw):
    if response_time is not None:
        tally["requests"] += 1
        lag_ms = (context or {}).get("lab_lag_ms", 0.0)
        tally["over_slo"] += lag_ms + response_time >= SLO_MS
        tally["over_slo_from_send"] += response_time >= SLO_MS


@events.report_to_master.add_listener
def _on_report(client_id, data, **_kw):
    data["lab_tally"] = dict(tally)
    tally.update(dict.fromkeys(tally, 0))


@events.worker_report.add_listener
def _on_worker_report(client_id, data, **_kw):
    for key, value in data.get("lab_tally", {}).items():
        tally[key] += value


@events.spawning_complete.add_listener
def _on_spawned(user_count, **_kw):
    if _env is not None and _env.reset_stats:   # Locust resets its stats at this moment too
        tally.update(dict.fromkeys(tally, 0))


@events.quitting.add_listener
def _slo_check(environment, **_kw):
    if isinstance(environment.runner, WorkerRunner):
        return   # the master (or a local run) decides
    total = environment.stats.total
    n, over = tally["requests"], tally["over_slo"]
    allowed = n - (99 * n + 99) // 100   # p99 < SLO <=> at most this many reach the SLO
    passed = n > 0 and total.num_failures == 0 and over <= allowed
    log.info("SLO check: %s. %d requests (Locust counted %d), %d failed; %d took %g ms or "
             "more%s (p99 < %g ms allows %d).", "PASS" if passed else "FAIL", n,
             total.num_requests, total.num_failures, over, SLO_MS,
             " from their due time" if RATE else "", SLO_MS, max(allowed, 0))
    if RATE:
        log.info("From the send, as Locust times them: %d took %g ms or more.  Pacing: %d "
                 "requests sent, %d more than %g ms after their due time; Locust's total "
                 "rate %.1f requests/s against the scenario's %g.", tally["over_slo_from_send"],
                 SLO_MS, tally["sent"], tally["late"], LATE_MS, total.total_rps, RATE)
    log.info("Locust's own p99 (its rounded histogram of response times): %d ms.",
             total.get_response_time_percentile(0.99))
    if not passed:
        environment.process_exit_code = 1
''')
