"""Lesson 1's endpoints (``lab_project/api/l01.py``: ``/l01/hello``, ``/l01/items`` and
their ``async def`` twins) through Django's test client, sync and async, on the project
configured in this process against a seeded SQLite file (the ``lab_django`` fixture).  No
server, no PostgreSQL needed."""

from __future__ import annotations

import json

import pytest

from helpers import BOTH, IN_PROCESS_SEED, django_get


@BOTH
@pytest.mark.parametrize("path", ["/l01/hello", "/l01/hello-async"])
def test_hello(lab_django, use_async, path):
    response = django_get(path, use_async=use_async)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == b'{"message": "hello"}'


def expected_items(limit: int) -> bytes:
    """The items body, built from the generator rather than from the ORM."""
    from catalog.management.commands.seed_lab import make_items

    rows = [
        {
            "id": item.id,
            "name": item.name,
            "category": item.category,
            "price": str(item.price),
            "quantity": item.quantity,
        }
        for item in make_items(IN_PROCESS_SEED["items"], IN_PROCESS_SEED["seed"])[:limit]
    ]
    return json.dumps(rows).encode()


@BOTH
@pytest.mark.parametrize("path", ["/l01/items", "/l01/items-async"])
@pytest.mark.parametrize(("query", "limit"), [("", 10), ("?limit=1", 1), ("?limit=37", 37)])
def test_items(lab_django, use_async, path, query, limit):
    response = django_get(path + query, use_async=use_async)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == expected_items(limit)
    assert [row["id"] for row in response.json()] == list(range(1, limit + 1))


def test_items_limit_beyond_the_table_returns_every_row(lab_django):
    assert len(django_get("/l01/items?limit=1000").json()) == IN_PROCESS_SEED["items"]


def test_sync_and_async_items_bodies_are_identical(lab_django):
    bodies = {
        django_get(path + "?limit=25", use_async=use_async).content
        for path in ("/l01/items", "/l01/items-async")
        for use_async in (False, True)
    }
    assert len(bodies) == 1


@BOTH
@pytest.mark.parametrize("path", ["/l01/items", "/l01/items-async"])
@pytest.mark.parametrize("raw", ["0", "1001", "-1", "abc", "1.5", "", " 5", "٣", "99999999999"])
def test_items_bad_limit(lab_django, use_async, path, raw):
    response = django_get(path, data={"limit": raw}, use_async=use_async)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": f"limit must be a whole number from 1 to 1000, got {raw!r}."
    }
