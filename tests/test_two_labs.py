"""Two labs at once: two LAB_HOMEs (two learners on one workshop server, or a test run
beside an open notebook) each get their own PostgreSQL, Valkey, servers and ports, and
both serve at the same time.

Each lab runs in a process of its own, as two kernels would, seeded with a different
number of items, so a response that counts the items shows which database answered.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helpers import alive, fetch
from lessons import config, services

# One lab in one process: start it and a server, say what it runs on one line of JSON,
# then serve until stdin closes, and close the lab.
WORKER = r"""
import json, sys
from lessons import Lab, Profile
from lessons.services import SeedSizes

home, items = sys.argv[1], int(sys.argv[2])
with Lab(home=__import__("pathlib").Path(home), quiet=True,
         seed=SeedSizes(items=items, customers=10, orders=40)) as lab:
    srv = lab.serve(Profile(server="gunicorn-sync", workers=1))
    s = lab.services
    print(json.dumps({"home": str(lab.home), "database_url": s.database_url, "redis_url": s.redis_url,
                      "url": srv.url, "pids": [*s.pids, srv.pid], "pg_home": str(s.pg_home)}), flush=True)
    sys.stdin.read()  # serve until the test closes stdin
"""

ITEMS = {"a": 120, "b": 70}


@pytest.fixture
def two_homes() -> Iterator[dict[str, Path]]:
    base = "/var/tmp" if config.is_root() else None  # reachable by PostgreSQL's user
    homes = {k: Path(tempfile.mkdtemp(prefix=f"lab-two-{k}-", dir=base)) for k in ITEMS}
    for home in homes.values():
        home.chmod(0o755)
    yield homes
    for home in homes.values():
        shutil.rmtree(home, ignore_errors=True)


def items_served(url: str) -> int:
    return len(fetch(url, "/l01/items?limit=1000", timeout=10).json())


def items_in(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM catalog_item").fetchone()[0]


def test_two_labs_with_their_own_homes_serve_at_the_same_time(two_homes, no_external) -> None:
    procs = {k: subprocess.Popen([sys.executable, "-c", WORKER, str(home), str(ITEMS[k])],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd=tempfile.gettempdir())
             for k, home in two_homes.items()}
    try:
        # Both start at once (each its own initdb, migrate and seed): each says what it runs.
        info = {}
        for k, p in procs.items():
            line = p.stdout.readline()
            assert line, f"lab {k} did not start:\n{p.stderr.read()[-3000:]}"
            info[k] = json.loads(line)
        a, b = info["a"], info["b"]
        assert all(p.poll() is None for p in procs.values())  # both up together

        # Nothing shared: homes, data, ports, processes.
        assert a["home"] != b["home"] and a["pg_home"] != b["pg_home"]
        ports = {k: {services_port(i["database_url"]), services_port(i["redis_url"]), services_port(i["url"])}
                 for k, i in info.items()}
        assert len(ports["a"] | ports["b"]) == 6, ports
        assert not set(a["pids"]) & set(b["pids"])

        # Each lab's server answers from its own database, while the other one serves too.
        for _ in range(2):  # interleaved: a, b, a, b
            assert items_served(a["url"]) == ITEMS["a"]
            assert items_served(b["url"]) == ITEMS["b"]
        assert items_in(a["database_url"]) == ITEMS["a"]
        assert items_in(b["database_url"]) == ITEMS["b"]

        # Each has its own Valkey: a key set in one is absent in the other.
        import redis

        ra, rb = redis.Redis.from_url(a["redis_url"]), redis.Redis.from_url(b["redis_url"])
        try:
            ra.set("two-labs", "a")
            assert rb.get("two-labs") is None and ra.get("two-labs") == b"a"
        finally:
            ra.close()
            rb.close()

        # Each LAB_HOME has its own lock, held by its own lab's process.
        for k, i in info.items():
            assert (Path(i["home"]) / "lab.lock").read_text() == str(procs[k].pid)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.stdin.close()
        codes = {k: p.wait(60) for k, p in procs.items()}
    assert codes == {"a": 0, "b": 0}, {k: p.stderr.read()[-2000:] for k, p in procs.items()}
    # Every process either lab started is gone with it.
    time.sleep(0.2)
    left = [pid for i in info.values() for pid in i["pids"] if alive(pid)]
    assert left == []


def services_port(url: str) -> int:
    return int(url.split("@")[-1].split("//")[-1].split("/")[0].rsplit(":", 1)[1])

