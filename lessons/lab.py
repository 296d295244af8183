"""``Lab``: the one line a notebook needs.

    lab = Lab()                          # PostgreSQL and Valkey up, CPUs planned
    with lab.serve(profile) as srv:      # the lab project under a real server
        ...                              # load it, measure
    lab.close()                          # everything stopped

Notebooks reach everything else through it too: ``lab.serve_all`` (``Servers``, whose
``compare`` loads them interleaved), ``lab.compare_urls``, ``lab.load``, ``lab.counts``
(a ``Counts`` table), ``lab.django_setup``, ``lab.microbench``, ``lab.waterfall``...

Re-running ``lab = Lab()`` in the same kernel closes the earlier lab first, so a
notebook can be re-run top to bottom without "address in use" or a held lock.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessons import config, cpus
from lessons.profile import Profile
from lessons.server import HttpProcess, LabServer, Upstream
from lessons.services import Progress, SeedSizes, Services

if TYPE_CHECKING:
    from lessons.counters import Counts
    from lessons.measure.comparison import Comparison
    from lessons.measure.result import Run
    from lessons.measure.waterfall import Step, Waterfall
    from lessons.microbench import Microbench

__all__ = ["Lab"]

_open_labs: weakref.WeakSet[Lab] = weakref.WeakSet()


class Lab:
    """Services up, CPUs planned, servers started and stopped on request."""

    def __init__(self, *, home: Path | None = None, seed: SeedSizes = SeedSizes(),
                 quiet: bool = False, progress: Progress | None = None,
                 server_cpus: int = 1) -> None:
        for other in list(_open_labs):
            other.close()
        t0 = time.monotonic()
        self._say: Progress = (lambda _m: None) if quiet else (progress or print)
        self.home = home or config.lab_home()
        self.cpu_plan = cpus.plan(server_cpus)
        self.services = Services(self.home, seed=seed, progress=self._say).start()
        self._servers: list[HttpProcess] = []
        _open_labs.add(self)
        self.startup_s = time.monotonic() - t0
        self._say(self.summary())

    # -- servers --------------------------------------------------------------------

    def server(self, profile: Profile | str | None = None, *, port: int | None = None,
               env: Mapping[str, str] | None = None, **knobs: Any) -> LabServer:
        """A configured, not yet started ``LabServer`` for ``profile`` (a Profile, a
        preset name, or None for the defaults) with ``knobs`` changed."""
        if profile is None:
            profile = Profile()
        elif isinstance(profile, str):
            profile = Profile.preset(profile)
        if knobs:
            profile = profile.replace(**knobs)
        server = LabServer(profile, env={**self.django_env(profile), **(env or {})},
                           port=port, cpus=self.cpu_plan.server, home=self.home)
        self._servers.append(server)
        return server

    def django_env(self, profile: Profile | None = None) -> dict[str, str]:
        """The environment the lab project's Django reads, in a server, a child process or
        this kernel: ``profile``'s ``LAB_*`` knobs and this lab's database, cache, secret
        key and profiles folder."""
        if self.services is None:
            raise RuntimeError("This lab is closed: create a new one with Lab().")
        profile = profile or Profile()
        database_url = (self.services.sqlite_url() if profile.database == "sqlite"
                        else self.services.database_url)
        self.profiles_dir.mkdir(exist_ok=True)
        return {**profile.env(), "LAB_DATABASE_URL": database_url,
                "LAB_REDIS_URL": self.services.redis_url, "LAB_SECRET_KEY": self._secret_key(),
                "LAB_PROFILE_DIR": str(self.profiles_dir)}

    def serve(self, profile: Profile | str | None = None, **kwargs: Any) -> LabServer:
        """Start a server and return it; use it as ``with lab.serve(p) as srv:`` so it
        stops at the end of the block (``lab.close()`` stops any left over)."""
        return self.server(profile, **kwargs).start()

    # -- experiments ------------------------------------------------------------------

    def serve_all(self, profiles: Mapping[str, Profile]) -> Servers:
        """Start one server per profile, all on the server's CPU (an idle server costs
        the others nothing); ``with lab.serve_all({...}) as servers:`` stops them all."""
        servers = Servers({label: self.server(p) for label, p in profiles.items()})
        try:
            for srv in servers.values():
                srv.start()
        except BaseException:
            servers.stop()
            raise
        return servers

    def counts(self, profiles: Mapping[str, Profile], paths: list[str], n: int = 50) -> Counts:
        """Exact per-request thread hops, threads started and queries (one worker,
        ``instrument=True``), one row per profile and path; ``counts.of(config, path)``
        reads one."""
        from lessons.counters import Counts, per_request

        rows = []
        for label, p in profiles.items():
            with self.serve(p.replace(instrument=True, workers=1)) as srv:
                for path in paths:
                    rows.append({"config": label, "path": path, **per_request(srv.url, path, n)})
        return Counts(rows)

    def count_per_request(self, server: HttpProcess | str, path: str, n: int = 50) -> dict[str, float]:
        """Exact counts per request of ``path`` (thread hops, threads started, queries) on a
        server started with ``instrument=True``: ``n`` requests one after another."""
        from lessons.counters import per_request

        return per_request(server if isinstance(server, str) else server.url, path, n)

    async def load(self, url: str, **load: Any) -> Run:
        """One load run against ``url`` (a running server's URL and path); ``load``:
        connections, rate, duration, warmup, label... (see ``lessons.measure.launch``)."""
        from lessons.measure.launch import arun

        return await arun(url, **load)

    async def compare_urls(self, targets: Mapping[str, str], **load: Any) -> Comparison:
        """Load each target (label -> URL of a running server, ``path=`` appended to each)
        in turn, A,B,A,B..., repeated; ``load``: repeats, connections, rate, duration,
        warmup, baseline... (see ``lessons.measure.comparison.compare_urls``)."""
        from lessons.measure.comparison import acompare_urls

        return await acompare_urls(targets, **load)

    async def waterfall(self, steps: Sequence[Step], **measure: Any) -> Waterfall:
        """Each step's capacity under the SLO and throughput, repeated and interleaved, one
        server per step (see ``lessons.measure.waterfall``)."""
        from lessons.measure.waterfall import ameasure

        return await ameasure(self, steps, **measure)

    # -- Django in this kernel or a child process ------------------------------------

    def django_setup(self, profile: Profile | None = None, **env: str) -> Any:
        """Django set up in this kernel for ``profile`` (default: no middleware,
        ``CONN_MAX_AGE=0``) on this lab's database and cache; returns the settings."""
        from lessons.inprocess import django_setup

        return django_setup(self.django_env(profile or Profile(middleware="none", conn_max_age=0)), **env)

    def microbench(self, task: str, **params: Any) -> Microbench:
        """Run micro-benchmark ``task`` ("middleware", "serializers") in a child process
        pinned to the server's CPU (see ``lessons.microbench``)."""
        from lessons.microbench import run

        return run(self, task, **params)

    # -- what django-silk stored ---------------------------------------------------------

    def silk_requests(self, path: str) -> int:
        """How many requests to ``path`` django-silk has stored in the lab's database."""
        from lessons.silk import requests

        return requests(self, path)

    def forget_silk(self, prefix: str) -> int:
        """Delete what silk stored for paths starting with ``prefix`` (rows and ``.prof``
        files); returns how many requests were deleted."""
        from lessons.silk import forget

        return forget(self, prefix)

    @contextlib.contextmanager
    def database_down(self) -> Iterator[None]:
        """``with lab.database_down():`` PostgreSQL is stopped inside the block and
        started again (same port) when it ends, also when the block raises."""
        self.services.stop_postgres()
        try:
            yield
        finally:
            self.services.start_postgres()

    def db_connections(self, server: HttpProcess | None = None, settle: float = 0.5) -> int:
        """Connections to the lab database: what pooling and leaks change.

        With ``server``: the TCP connections that server's processes hold open to
        PostgreSQL, read from the OS, so no other client of the database (a test beside
        it, a backend still exiting) counts.  Without: every client backend PostgreSQL
        has for the lab database (this query's own excluded).  Read until two readings
        ``settle`` seconds apart agree (at most 5 s): Django closes a request's
        connection on ``request_finished``, which its ASGI handler sends after the
        response went out."""
        read = (lambda: _connections_to(server, self.services.database_url)) if server else self._backends
        count, deadline = read(), time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(settle)
            again = read()
            if again == count:
                break
            count = again
        return count

    def _backends(self) -> int:
        import psycopg

        with psycopg.connect(self.services.database_url) as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()[0]

    def upstream(self, delay_ms: int = 50) -> Upstream:
        """Start the stand-in external API (its own process, on the load generator's
        CPU so the server's core measures only the server); stop it with ``with``."""
        up = Upstream(delay_ms, cpus=self.cpu_plan.client, home=self.home)
        self._servers.append(up)
        return up.start()

    # -- teardown -------------------------------------------------------------------

    def close(self) -> None:
        """Stop every server this lab started, then PostgreSQL and Valkey."""
        for server in self._servers:
            server.stop()
        self._servers.clear()
        if self.services is not None:
            self.services.stop()
            self.services = None  # type: ignore[assignment]
        _open_labs.discard(self)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- facts ----------------------------------------------------------------------

    @property
    def profiles_dir(self) -> Path:
        """Where profilers write their reports (pyinstrument's HTML, silk's .prof)."""
        return self.home / "profiles"

    def summary(self) -> str:
        s = self.services
        db = "external PostgreSQL" if s.external_database else "PostgreSQL"
        cache = "external Redis" if s.external_redis else "Valkey"
        return (f"Lab ready in {self.startup_s:.1f} s: {db} at {_hostport(s.database_url)}, "
                f"{cache} at {_hostport(s.redis_url)}; {self.cpu_plan.note}.")

    def _secret_key(self) -> str:
        """One key for every worker and server of this lab, kept across runs."""
        path = self.home / "secret_key"
        if not path.exists():
            import secrets

            path.write_text(secrets.token_urlsafe(50))
            path.chmod(0o600)
        return path.read_text().strip()

    def __repr__(self) -> str:
        state = "closed" if self.services is None else f"{len(self._servers)} server(s)"
        return f"<Lab {self.home} {state}>"


class Servers(dict[str, LabServer]):
    """Running servers by label; ``await servers.compare(path)`` loads them interleaved."""

    @property
    def urls(self) -> dict[str, str]:
        return {label: srv.url for label, srv in self.items()}

    async def compare(self, path: str, *, only: Sequence[str] | None = None, **load: Any) -> Comparison:
        """Load every server (or those labelled ``only``) on ``path``, A,B,A,B...;
        ``load``: repeats, connections, rate, duration, warmup... (see
        ``lessons.measure.comparison.compare_urls``)."""
        from lessons.measure.comparison import acompare_urls

        urls = self.urls if only is None else {label: self[label].url for label in only}
        return await acompare_urls(urls, path=path, **load)

    def stop(self) -> None:
        for srv in self.values():
            srv.stop()

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _hostport(url: str) -> str:
    return url.split("@")[-1].split("//")[-1].rsplit("/", 1)[0]


def _connections_to(server: HttpProcess, database_url: str) -> int:
    """Established TCP connections from ``server``'s processes to the database's port
    (the lab's PostgreSQL listens on 127.0.0.1 only)."""
    import urllib.parse

    import psutil

    url = urllib.parse.urlsplit(database_url)
    if not url.hostname or url.hostname.startswith("/"):
        raise ValueError(f"Counting a server's database connections needs a TCP database URL (host and port), "
                         f"not {database_url!r}: call db_connections() without a server to count every client.")
    port = url.port or 5432
    found = set()  # a socket a forked worker inherited from its master counts once
    for process in server.processes():
        try:
            found |= {(c.laddr, c.raddr) for c in process.net_connections(kind="tcp")
                      if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED}
        except psutil.Error:  # a worker that just exited holds nothing
            continue
    return len(found)
