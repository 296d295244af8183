"""Strict parsing of the ``LAB_*`` variables settings.py reads.

A typo must stop the server with one clear sentence (variable, value, what is allowed),
not silently measure a different configuration than the one the learner asked for.
settings.py reads the environment once, into a ``LabEnv``; this module never reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from lab import knobs

_UINT = re.compile(r"[0-9]+")
_UFLOAT = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")

_DATABASE_URL_FORMS = (
    "postgresql://user[:password]@host[:port]/dbname (or postgres://...) "
    "or sqlite:///absolute/path.sqlite3"
)


def invalid(name: str, value: str, allowed: str, why: str = "") -> ImproperlyConfigured:
    """Build the one-sentence error every bad value gets: variable, value, choices."""
    why = f" ({why})" if why else ""
    # Never echo a URL's password into a traceback or a server log.
    value = _URL_PASSWORD.sub(r"\1***@", value)
    message = f"{name}={value!r} is invalid{why}; allowed values: {allowed}."
    return ImproperlyConfigured(message)


class LabEnv(dict[str, str]):
    """The ``LAB_*`` variables, set and non-empty; each method parses one of them, or
    gives its default when it is unset."""

    def boolean(self, name: str, default: bool) -> bool:
        if name not in self:
            return default
        value = self[name]
        try:
            return knobs.BOOLEANS[value.lower()]
        except KeyError:
            raise invalid(name, value, knobs.BOOLEAN_CHOICES) from None

    def integer(self, name: str, default: int | None, minimum: int, allowed: str) -> int | None:
        if name not in self:
            return default
        value = self[name]
        # int() would also take "+5", " 5", "1_000" and non-ASCII digits: too lenient.
        if not _UINT.fullmatch(value) or int(value) < minimum:
            raise invalid(name, value, allowed)
        return int(value)

    def milliseconds(self, name: str) -> float:
        """A duration in ms, 0 (the default) included: 0 means "off"."""
        if name not in self:
            return 0.0
        value = self[name]
        if not _UFLOAT.fullmatch(value):
            raise invalid(name, value, "a number of milliseconds >= 0, e.g. 1 or 0.5")
        return float(value)

    def seconds(self, name: str) -> float | None:
        if name not in self:
            return None
        value = self[name]
        if not _UFLOAT.fullmatch(value) or float(value) <= 0:
            raise invalid(name, value, "a number of seconds greater than 0, e.g. 30 or 0.5")
        return float(value)

    def choice(self, name: str, default: str, choices: Mapping[str, Any]) -> str:
        """One of the knob table's names (case-insensitive)."""
        value = self.get(name, default).lower()
        if value not in choices:
            raise invalid(name, self[name], ", ".join(choices))
        return value

    def database(self, sqlite_default: Path) -> dict[str, Any]:
        """``LAB_DATABASE_URL`` as a ``DATABASES["default"]`` dict (without knobs)."""
        url = self.get("LAB_DATABASE_URL")
        if url is None:
            return {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_default}

        def bad(reason: str) -> ImproperlyConfigured:
            return invalid("LAB_DATABASE_URL", url, _DATABASE_URL_FORMS, reason)

        parts = urlsplit(url)
        if parts.query or parts.fragment:
            raise bad("query strings and fragments are not supported")
        if parts.scheme == "sqlite":
            if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
                raise bad("the SQLite path must be absolute, after three slashes")
            # sqlite:///abs/path and SQLAlchemy's sqlite:////abs/path both mean /abs/path.
            path = "/" + unquote(parts.path).lstrip("/")
            return {"ENGINE": "django.db.backends.sqlite3", "NAME": Path(path)}
        if parts.scheme not in ("postgresql", "postgres"):
            raise bad(f"unknown scheme {parts.scheme!r}")
        try:
            port = parts.port
        except ValueError:
            raise bad("the port is not a number from 0 to 65535") from None
        dbname = unquote(parts.path.removeprefix("/"))
        if not parts.username:
            raise bad("the user is missing")
        if not parts.hostname:
            raise bad("the host is missing")
        if not dbname or "/" in dbname:
            raise bad("the database name is missing")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": dbname,
            "USER": unquote(parts.username),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname,
            "PORT": str(port) if port is not None else "",
        }
