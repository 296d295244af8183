"""What django-silk stored in the lab's database: count it, and remove a run's rows.

Silk saves every request it intercepts (``silk_request``, with its cProfile text in
``pyprofile``), its response, its SQL queries and any profile blocks.  Under load that is
thousands of rows a minute; a notebook that loads a silk-profiled endpoint counts what
silk recorded (proof that it profiled that endpoint) and then removes those rows, so the
lab's database does not grow with every run.  Plain SQL on the lab's PostgreSQL (the
notebook process has no Django settings); children first, since Django's cascades are
not database constraints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lessons.lab import Lab

__all__ = ["requests", "forget"]


def requests(lab: Lab, path: str) -> int:
    """How many requests to ``path`` silk has stored."""
    import psycopg

    with psycopg.connect(lab.services.database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM silk_request WHERE path = %s", (path,)).fetchone()[0])


def forget(lab: Lab, prefix: str) -> int:
    """Delete every stored request whose path starts with ``prefix``, with its response,
    queries, profiles and ``.prof`` file; returns how many requests were deleted."""
    from pathlib import Path

    import psycopg

    mine = "SELECT id FROM silk_request WHERE path LIKE %s"
    like = prefix.replace("%", r"\%").replace("_", r"\_") + "%"
    with psycopg.connect(lab.services.database_url) as conn:
        for (name,) in conn.execute("SELECT prof_file FROM silk_request WHERE path LIKE %s "
                                    "AND prof_file <> ''", (like,)):
            Path(name).unlink(missing_ok=True)
        conn.execute("DELETE FROM silk_profile_queries WHERE profile_id IN "
                     f"(SELECT id FROM silk_profile WHERE request_id IN ({mine}))", (like,))
        for table in ("silk_profile", "silk_sqlquery", "silk_response"):
            conn.execute(f"DELETE FROM {table} WHERE request_id IN ({mine})", (like,))
        return conn.execute("DELETE FROM silk_request WHERE path LIKE %s", (like,)).rowcount
