"""
Seed the catalog with deterministic data.

Every lesson measures against the same rows: values come from fixed random seeds,
primary keys are 1..N and timestamps derive from a fixed base date, never now(). A
second run with the same arguments finds the data already there and changes nothing, so
a notebook can call it unconditionally; different arguments replace the data.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Count, Max, Min, Sum

from catalog.models import Customer, Item, Order

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 365 * 24 * 3600
BATCH_SIZE = 2000  # Django lowers it where the backend allows fewer parameters.

CATEGORIES = [
    "books", "music", "games", "garden", "kitchen", "office",
    "outdoor", "sports", "tools", "toys", "travel", "wellness",
]  # fmt: skip
ADJECTIVES = [
    "Ancient", "Bright", "Compact", "Deluxe", "Electric", "Fresh", "Golden", "Handy",
    "Iron", "Jolly", "Kinetic", "Light", "Modern", "Nimble", "Oak", "Pocket",
]  # fmt: skip
NOUNS = [
    "Anchor", "Basket", "Candle", "Drill", "Easel", "Flask", "Globe", "Hammock",
    "Kettle", "Lantern", "Mug", "Notebook", "Pillow", "Radio", "Scarf", "Teapot",
]  # fmt: skip
FIRST_NAMES = [
    "Ada", "Ben", "Chloe", "Dmitri", "Esme", "Farid", "Grace", "Hiro",
    "Ines", "Jonas", "Kemi", "Luca", "Mira", "Nils", "Olga", "Priya",
]  # fmt: skip
LAST_NAMES = [
    "Adams", "Baker", "Costa", "Dubois", "Eze", "Fischer", "Garcia", "Haddad",
    "Ivanova", "Jensen", "Kim", "Lopez", "Moreau", "Novak", "Okafor", "Patel",
]  # fmt: skip
STATUSES = [choice.value for choice in Order.Status]
STATUS_WEIGHTS = [15, 50, 30, 5]


def _rng(seed: int, table: str) -> random.Random:
    """One stream per table, so resizing one table leaves the others' rows unchanged."""
    return random.Random(f"{seed}:{table}")


def _created(rng: random.Random) -> datetime:
    return BASE_TIME + timedelta(seconds=rng.randrange(SPAN_SECONDS))


def _money(rng: random.Random, low_cents: int, high_cents: int) -> Decimal:
    return Decimal(rng.randint(low_cents, high_cents)).scaleb(-2)


def make_items(count: int, seed: int) -> list[Item]:
    rng = _rng(seed, "items")
    return [
        Item(
            id=pk,
            name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            category=rng.choice(CATEGORIES),
            price=_money(rng, 199, 99_999),
            quantity=rng.randint(0, 500),
            active=rng.random() < 0.9,
            created=_created(rng),
        )
        for pk in range(1, count + 1)
    ]


def make_customers(count: int, seed: int) -> list[Customer]:
    rng = _rng(seed, "customers")
    return [
        Customer(
            id=pk,
            name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            email=f"customer{pk}@example.com",
            created=_created(rng),
        )
        for pk in range(1, count + 1)
    ]


def make_orders(count: int, customers: int, seed: int) -> list[Order]:
    rng = _rng(seed, "orders")
    return [
        Order(
            id=pk,
            customer_id=rng.randint(1, customers),
            status=rng.choices(STATUSES, STATUS_WEIGHTS)[0],
            amount=_money(rng, 500, 200_000),
            created=_created(rng),
        )
        for pk in range(1, count + 1)
    ]


def _values(obj: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _already_seeded(
    model: type[models.Model], rows: list[Any], checksum: str | None
) -> bool:
    """
    Cheaply tell whether the table holds exactly ``rows``: the count, the id range, an
    integer column's sum and three sampled rows (first, middle, last) must all match.
    A different seed changes the samples; a different size changes the count.
    """
    aggregates: dict[str, Any] = {"count": Count("pk"), "low": Min("pk"), "high": Max("pk")}
    if checksum:
        aggregates["sum"] = Sum(checksum)
    found = model.objects.aggregate(**aggregates)
    expected = {
        "count": len(rows),
        "low": rows[0].pk if rows else None,
        "high": rows[-1].pk if rows else None,
    }
    if checksum:
        expected["sum"] = sum(getattr(row, checksum) for row in rows) if rows else None
    if found != expected:
        return False
    if not rows:
        return True
    samples = {rows[i].pk: _values(rows[i]) for i in (0, len(rows) // 2, len(rows) - 1)}
    fields = list(samples[rows[0].pk])
    stored = model.objects.filter(pk__in=list(samples)).values(*fields)
    return {row[model._meta.pk.attname]: row for row in stored} == samples


def _vacuum(models_: list[type[models.Model]]) -> None:
    """
    VACUUM ANALYZE the fresh tables, so autovacuum does not wake up on them in the middle
    of a lesson's first measurement, and the planner has statistics from the start.

    This backend's row counts reach the shared statistics only when it is next idle (at
    most once a second); flush them first, or autovacuum would still see the deletes
    and inserts as pending work after our VACUUM.
    """
    names = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models_)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(f"VACUUM ANALYZE {names}")


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


class Command(BaseCommand):
    help = "Fill the catalog with deterministic items, customers and orders (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=_non_negative, default=10_000)
        parser.add_argument("--customers", type=_non_negative, default=1_000)
        parser.add_argument("--orders", type=_non_negative, default=20_000)
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        sizes = {name: options[name] for name in ("items", "customers", "orders")}
        seed = options["seed"]
        if sizes["orders"] and not sizes["customers"]:
            raise CommandError("--orders needs at least one customer (--customers >= 1).")

        # (model, rows, an integer column whose sum serves as a cheap checksum)
        tables: list[tuple[type[models.Model], list[Any], str | None]] = [
            (Item, make_items(sizes["items"], seed), "quantity"),
            (Customer, make_customers(sizes["customers"], seed), None),
            (Order, make_orders(sizes["orders"], sizes["customers"], seed), "customer_id"),
        ]
        summary = (
            f"{sizes['items']} items, {sizes['customers']} customers, "
            f"{sizes['orders']} orders (seed {seed})"
        )
        if all(_already_seeded(*table) for table in tables):
            self.stdout.write(f"seed_lab: already seeded with {summary}, nothing to do.")
            return

        with transaction.atomic():
            # Children first, so the customers' cascade finds nothing left to collect.
            for model in (Order, Customer, Item):
                model.objects.all().delete()
            for model, rows, _ in tables:
                model.objects.bulk_create(rows, batch_size=BATCH_SIZE)
            # Explicit ids do not advance PostgreSQL's identity sequences; without this
            # the next row created in the admin would collide with id 1.
            sql = connection.ops.sequence_reset_sql(no_style(), [Item, Customer, Order])
            if sql:
                with connection.cursor() as cursor:
                    for statement in sql:
                        cursor.execute(statement)
        if connection.vendor == "postgresql":
            _vacuum([model for model, _, _ in tables])
        elapsed = time.perf_counter() - started
        self.stdout.write(f"seed_lab: seeded {summary} in {elapsed:.2f} s.")
