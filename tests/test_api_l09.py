"""
Lesson 9's endpoints against real servers on the lab's PostgreSQL: the whole list, the
sync and the async stream give the same JSON (no Content-Length for the streams), and
each kind of iterator under the other kind of server warns. The two guide views:
``/l09/guide-iterator`` (the guide's streaming view as written) and ``/l09/guide-list``
(the same view over the evaluated queryset) give the same items, every item of the
table, with the guide's ``json.dumps`` separators; under ASGI both are sync generators
that Django consumes whole, with its warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import headers
from lessons.probes import get
from lessons.profile import Profile

GUIDE_VIEWS = ("/l09/guide-iterator", "/l09/guide-list")
SYNC_WARNING = (
    "StreamingHttpResponse must consume synchronous iterators in order to serve them "
    "asynchronously. Use an asynchronous iterator instead."
)
ASYNC_WARNING = (
    "StreamingHttpResponse must consume asynchronous iterators in order to serve them "
    "synchronously. Use a synchronous iterator instead."
)


@pytest.fixture(scope="module")
def servers(lab) -> Iterator[dict[str, Any]]:
    with lab.serve(Profile(server="gunicorn-sync", middleware="none")) as wsgi, \
            lab.serve(Profile(server="uvicorn", middleware="none")) as asgi:
        yield {"wsgi": wsgi, "asgi": asgi}


def test_guide_views_give_every_item_once_with_the_guides_separators(lab, servers):
    import psycopg

    with psycopg.connect(lab.services.database_url) as conn:
        table = sorted(conn.execute("SELECT id, name FROM catalog_item").fetchall())
    for srv in servers.values():
        for path in GUIDE_VIEWS:
            reply = get(srv.url, path)
            assert reply.status == 200
            assert {k.lower(): v for k, v in reply.headers.items()}["content-type"] == "application/json"
            # json.dumps' default separators, as the guide writes it: '{"id": 1, "name": "..."}'
            assert reply.body.startswith(b'[{"id": ') and b', "name": ' in reply.body[:100]
            items = json.loads(reply.body)
            assert list(items[0]) == ["id", "name"]
            assert sorted((i["id"], i["name"]) for i in items) == table


def test_guide_views_are_sync_generators_django_consumes_whole_under_asgi(servers):
    for path in GUIDE_VIEWS:
        assert get(servers["asgi"].url, path).status == 200
    # Python shows a warning once per place in the code: once per process here.
    assert SYNC_WARNING in servers["asgi"].logs(400)
    assert SYNC_WARNING not in servers["wsgi"].logs(400)


# The whole list and the two streams #####################################################


STREAMS = ("/l09/json", "/l09/stream-sync", "/l09/stream-async")


@pytest.mark.parametrize("n", [10, 20_000])
def test_three_ways_give_the_same_json(redis_asgi, locmem_wsgi, n):
    bodies = set()
    for url in (redis_asgi.url, locmem_wsgi.url):
        for path in STREAMS:
            reply = get(url, f"{path}?n={n}")
            assert reply.status == 200, (url, path)
            assert headers(reply)["content-type"] == "application/json"
            bodies.add(reply.body)
    assert len(bodies) == 1
    items = json.loads(bodies.pop())
    assert [item["id"] for item in items] == list(range(1, n + 1))
    assert list(items[0]) == ["id", "name"]
    if n > 10_000:  # the second pass repeats the items, ids shifted
        assert items[10_000 + 6]["name"] == items[6]["name"]


def test_streams_have_no_content_length(locmem_wsgi):
    # CommonMiddleware (the default stack) sets Content-Length, where the length is known.
    whole = get(locmem_wsgi.url, "/l09/json?n=5")
    assert headers(whole)["content-length"] == str(len(whole.body))
    for path in STREAMS[1:]:
        got = headers(get(locmem_wsgi.url, f"{path}?n=5"))
        assert "content-length" not in got and got["transfer-encoding"] == "chunked"


def test_bad_n(redis_asgi):
    for path in STREAMS:
        reply = get(redis_asgi.url, f"{path}?n=100001")
        assert (reply.status, reply.json()) == (
            400, {"error": "n must be a whole number from 1 to 100000, got '100001'."}
        )


def test_sync_iterator_under_asgi_and_async_under_wsgi_warn(redis_asgi, locmem_wsgi):
    assert get(redis_asgi.url, "/l09/stream-sync?n=3").status == 200
    assert get(locmem_wsgi.url, "/l09/stream-async?n=3").status == 200
    assert SYNC_WARNING in redis_asgi.logs(200)
    assert ASYNC_WARNING in locmem_wsgi.logs(200)
    assert ASYNC_WARNING not in redis_asgi.logs(200) and SYNC_WARNING not in locmem_wsgi.logs(200)
