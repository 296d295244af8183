"""
Tests for lab_project: it never imports lessons, it migrates and boots, seed_lab, and the
project-wide endpoints (health check, admin, allowed hosts, no slash redirects); the LAB_*
settings contract is tests/test_settings.py, each lesson's endpoints tests/test_api_lNN.py.

The Django part configures the project once in this process against a SQLite file in a
temporary directory (the ``lab_django`` fixture, conftest.py), and restores the environment
right after, so no LAB_* variable leaks into other test modules. No PostgreSQL needed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import BOTH, IN_PROCESS_SEED, django_get

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab_project"


# The project ############################################################################


def test_lab_project_never_imports_lessons():
    pattern = re.compile(r"^\s*(from|import)\s+lessons\b", re.M)
    offenders = [p for p in LAB.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_manage_py_migrates_without_admin_middleware_and_models_match_migrations(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DJANGO_"))}
    env |= {"LAB_DATABASE_URL": f"sqlite://{tmp_path}/lab.sqlite3", "LAB_MIDDLEWARE": "none"}
    script = (
        "from django.core.management import call_command as c; import django; "
        "django.setup(); c('migrate', verbosity=0); "
        "c('makemigrations', 'catalog', check=True, dry_run=True, verbosity=0)"
    )
    env["DJANGO_SETTINGS_MODULE"] = "lab.settings"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=LAB, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "lab.sqlite3").stat().st_size > 0


@pytest.mark.parametrize("entry", ["wsgi", "asgi"])
def test_entry_points_import_every_view_at_boot(tmp_path, entry):
    # A worker must not import the views on its first request: with several workers on
    # one core those imports land inside a measurement.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DJANGO_"))}
    env |= {"LAB_DATABASE_URL": f"sqlite://{tmp_path}/lab.sqlite3"}
    views = sorted(p.stem for p in (LAB / "api").glob("l[0-9]*.py"))
    script = (f"import sys, lab.{entry}; "
              f"print(sorted(m[4:] for m in sys.modules if m.startswith('api.l')))")
    result = subprocess.run([sys.executable, "-c", script], cwd=LAB, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(views)


# The project, in process (the lab_django fixture, conftest.py) #########################


def seed(**sizes: int) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("seed_lab", stdout=out, **{**IN_PROCESS_SEED, **sizes})
    return out.getvalue()


def dump() -> str:
    """A hash of every catalog row, to prove a run changed nothing."""
    from catalog.models import Customer, Item, Order

    digest = hashlib.sha256()
    for model in (Item, Customer, Order):
        for row in model.objects.order_by("pk").values_list():
            digest.update(repr(row).encode())
    return digest.hexdigest()


def counts() -> tuple[int, int, int]:
    from catalog.models import Customer, Item, Order

    return Item.objects.count(), Customer.objects.count(), Order.objects.count()


def test_seed_counts(lab_django):
    assert counts() == (40, 5, 60)


def test_seed_is_idempotent(lab_django):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    before = dump()
    with CaptureQueriesContext(connection) as queries:
        out = seed()
    assert out == (
        "seed_lab: already seeded with 40 items, 5 customers, 60 orders (seed 42), "
        "nothing to do.\n"
    )
    assert dump() == before
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)


def test_seed_replaces_on_new_sizes_or_seed(lab_django):
    before = dump()
    try:
        assert "seeded 12 items, 3 customers, 7 orders (seed 42) in" in seed(
            items=12, customers=3, orders=7
        )
        assert counts() == (12, 3, 7)
        seed(seed=7)
        assert counts() == (40, 5, 60) and dump() != before
    finally:
        seed()
    assert dump() == before


def test_seed_is_deterministic_and_fixed(lab_django):
    from catalog.management.commands import seed_lab
    from catalog.models import Customer, Item, Order

    # Growing a table keeps its first rows: each table has its own random stream.
    prefix = seed_lab.make_items(10, 42)
    assert [vars_of(i) for i in prefix] == [vars_of(i) for i in seed_lab.make_items(40, 42)[:10]]
    # A golden row: a change in the generator silently changes every lesson's data.
    assert Item.objects.filter(pk=1).values("name", "category", "price", "quantity").get() == {
        "name": "Kinetic Hammock",
        "category": "outdoor",
        "price": seed_lab.Decimal("714.87"),
        "quantity": 336,
    }
    assert str(Item.objects.get(pk=1).created) == "2025-04-18 11:55:41+00:00"
    assert Customer.objects.get(pk=1).email == "customer1@example.com"
    assert Order.objects.filter(customer_id__gt=5).count() == 0


def vars_of(obj: Any) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_seed_needs_customers_for_orders(lab_django):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--orders needs at least one customer"):
        seed(customers=0)
    assert counts() == (40, 5, 60)


def test_new_rows_get_fresh_ids_after_seeding(lab_django):
    from django.db import transaction

    from catalog.models import Item

    with transaction.atomic():
        item = Item.objects.create(name="x", category="y", price=1, quantity=1)
        assert item.pk == 41
        transaction.set_rollback(True)


# Project-wide endpoints (lesson 1's are tests/test_api_l01.py) #########################


@BOTH
def test_healthz(lab_django, use_async):
    response = django_get("/healthz", use_async=use_async)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == b'{"status": "ok"}'


@pytest.mark.parametrize("path", ["/l01/hello/", "/healthz/", "/l01/items/"])
def test_trailing_slash_is_not_redirected(lab_django, path):
    assert django_get(path).status_code == 404


def test_admin(lab_django):
    response = django_get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"
    assert django_get("/admin/login/").status_code == 200


def test_only_loopback_hosts_are_allowed(lab_django):
    assert django_get("/healthz", HTTP_HOST="127.0.0.1").status_code == 200
    assert django_get("/healthz", HTTP_HOST="localhost").status_code == 200
    assert django_get("/healthz", HTTP_HOST="example.com").status_code == 400
