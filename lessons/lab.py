"""``Lab``: the one line a notebook needs.

    lab = Lab()                          # PostgreSQL and Valkey up, CPUs planned
    with lab.serve(profile) as srv:      # the lab project under a real server
        ...                              # load it, measure
    lab.close()                          # everything stopped

Re-running ``lab = Lab()`` in the same kernel closes the earlier lab first, so a
notebook can be re-run top to bottom without "address in use" or a held lock.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lessons import config, cpus
from lessons.profile import Profile
from lessons.server import HttpProcess, LabServer, Upstream
from lessons.services import Progress, SeedSizes, Services

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
        if self.services is None:
            raise RuntimeError("This lab is closed: create a new one with Lab().")
        if profile is None:
            profile = Profile()
        elif isinstance(profile, str):
            profile = Profile.preset(profile)
        if knobs:
            profile = profile.replace(**knobs)
        database_url = (self.services.sqlite_url() if profile.database == "sqlite"
                        else self.services.database_url)
        server = LabServer(
            profile,
            env={"LAB_DATABASE_URL": database_url, "LAB_REDIS_URL": self.services.redis_url,
                 "LAB_SECRET_KEY": self._secret_key(), **(env or {})},
            port=port, cpus=self.cpu_plan.server, home=self.home,
        )
        self._servers.append(server)
        return server

    def serve(self, profile: Profile | str | None = None, **kwargs: Any) -> LabServer:
        """Start a server and return it; use it as ``with lab.serve(p) as srv:`` so it
        stops at the end of the block (``lab.close()`` stops any left over)."""
        return self.server(profile, **kwargs).start()

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


def _hostport(url: str) -> str:
    return url.split("@")[-1].split("//")[-1].rsplit("/", 1)[0]
