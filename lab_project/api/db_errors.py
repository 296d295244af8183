"""
Database failures as one-sentence JSON answers instead of 500 pages (lesson 8).

A p99 budget needs a database call that fails fast and says why. Django turns every
driver error into its own ``django.db.utils.OperationalError`` and keeps the driver's
exception as ``__cause__``; that cause tells the three failures apart:

* ``psycopg.errors.QueryCanceled`` (SQLSTATE 57014): PostgreSQL cancelled the statement,
  here because it ran past ``statement_timeout`` -> 504, the query took too long;
* ``psycopg_pool.PoolTimeout`` (a ``psycopg.OperationalError``): Django's pool had no free
  connection within its ``timeout`` -> 503, the server is saturated. With a pool this
  is also what an unreachable database looks like: the pool keeps retrying in the
  background and the request waits the full pool timeout;
* an error whose SQLSTATE says the server ended the connection (class 08, connection
  exception, or 57P01-57P03: shut down by an administrator, after a crash, or still
  starting): a connection that was open when PostgreSQL stopped or restarted, used
  again (a persistent or pooled connection nothing checked) -> 503, connection lost;
* any other ``psycopg.OperationalError`` without an SQLSTATE: no usable connection at
  all (refused, ``connect_timeout`` expired, the connection is already closed) -> 503,
  unreachable.

Anything else (SQLite's errors, a PostgreSQL error with another SQLSTATE) is re-raised:
it is a bug to see, not a condition to report.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.db import OperationalError, connection
from django.http import HttpRequest, JsonResponse


def answer(exc: OperationalError) -> JsonResponse | None:
    """The JSON answer for a database failure, or None when it is not one of the three."""
    cause = exc.__cause__
    # Imported here: only PostgreSQL failures get this far, and only on failure.
    import psycopg
    from psycopg_pool import PoolTimeout

    if isinstance(cause, psycopg.errors.QueryCanceled):
        if "statement timeout" in str(cause):
            sentence = (
                "The database cancelled the query after the statement timeout "
                f"({settings.LAB_STATEMENT_TIMEOUT_MS} ms)."
            )
        else:
            sentence = f"The database cancelled the query: {_one_line(cause)}"
        return JsonResponse({"error": sentence}, status=504)
    if isinstance(cause, PoolTimeout):
        pool = connection.pool
        sentence = (
            "No database connection became free within the pool's timeout "
            f"({pool.timeout:g} s; pool size {pool.max_size})."
        )
        return JsonResponse({"error": sentence}, status=503)
    if isinstance(cause, psycopg.Error) and _connection_lost(cause.sqlstate):
        sentence = f"The database closed the connection: {_one_line(cause)}"
        return JsonResponse({"error": sentence}, status=503)
    if isinstance(cause, psycopg.OperationalError) and cause.sqlstate is None:
        sentence = f"The database is unreachable: {_one_line(cause)}"
        return JsonResponse({"error": sentence}, status=503)
    return None


def _connection_lost(sqlstate: str | None) -> bool:
    """Class 08 (connection exception) or 57P01-57P03 (operator intervention that ends
    the session): the server is gone from under an open connection."""
    return sqlstate is not None and (
        sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")
    )


def _one_line(exc: BaseException) -> str:
    """libpq's messages span lines ("...failed: Connection refused\\n\\tIs the server...")."""
    return " ".join(str(exc).split())


def database_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer a view's database failures with ``answer``; works on def and async views."""
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                return await view(request, *args, **kwargs)
            except OperationalError as exc:
                if (response := answer(exc)) is None:
                    raise
                return response

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except OperationalError as exc:
            if (response := answer(exc)) is None:
                raise
            return response

    return wrapper
