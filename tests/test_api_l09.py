"""
Lesson 9's two guide views against real servers on the lab's PostgreSQL:
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

from lessons.probes import get
from lessons.profile import Profile

GUIDE_VIEWS = ("/l09/guide-iterator", "/l09/guide-list")
SYNC_WARNING = (
    "StreamingHttpResponse must consume synchronous iterators in order to serve them "
    "asynchronously. Use an asynchronous iterator instead."
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
