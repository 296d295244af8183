"""The database knobs of the LAB_* settings contract (lab/settings.py, with lab/knobs.py's
table and lab/env.py's parsing): LAB_DATABASE_URL (PostgreSQL and SQLite), CONN_MAX_AGE,
Django's connection pool and the guide's (dj-db-conn-pool), the statement and connect
timeouts: each knob's values, the rules between them, and one clear sentence for every bad
value. As in test_settings.py, each case executes lab/settings.py afresh (runpy) under a
patched environment (the ``load`` and ``error`` fixtures, conftest.py). No server, no
PostgreSQL needed: the URLs are parsed, never connected to."""

from __future__ import annotations

import pytest

from helpers import PG_URL
from lessons.profile import Profile, ProfileError

DATABASE_URL_FORMS = (
    "postgresql://user[:password]@host[:port]/dbname (or postgres://...) "
    "or sqlite:///absolute/path.sqlite3"
)


def test_postgresql_url(load):
    db = load(LAB_DATABASE_URL="postgresql://lab:p%40ss%3Aw@db.local:6543/lab_db")[
        "DATABASES"
    ]["default"]
    assert db == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "lab_db",
        "USER": "lab",
        "PASSWORD": "p@ss:w",
        "HOST": "db.local",
        "PORT": "6543",
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": {"connect_timeout": 5},
    }


def test_postgres_scheme_ipv6_and_no_password_or_port(load):
    db = load(LAB_DATABASE_URL="postgres://lab@[::1]/lab")["DATABASES"]["default"]
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == ("lab", "", "::1", "")


@pytest.mark.parametrize("slashes", ["//", "///"], ids=["sqlite:///abs", "sqlite:////abs"])
def test_sqlite_url(load, tmp_path, slashes):
    url = f"sqlite:{slashes}{tmp_path}/my%20lab.sqlite3"
    db = load(LAB_DATABASE_URL=url)["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert str(db["NAME"]) == f"{tmp_path}/my lab.sqlite3"
    assert db["OPTIONS"] == {}


@pytest.mark.parametrize(
    ("url", "shown", "why"),
    [
        ("mysql://lab:secret@h/lab", "mysql://lab:***@h/lab", "unknown scheme 'mysql'"),
        ("sqlite://lab.sqlite3", "sqlite://lab.sqlite3", "the SQLite path must be absolute"),
        ("sqlite:///", "sqlite:///", "the SQLite path must be absolute"),
        ("postgresql://h:5432/lab", "postgresql://h:5432/lab", "the user is missing"),
        ("postgresql://lab:pw@:5432/lab", "postgresql://lab:***@:5432/lab", "host is missing"),
        ("postgresql://lab@h:5432/", "postgresql://lab@h:5432/", "database name is missing"),
        ("postgresql://lab@h:port/lab", "postgresql://lab@h:port/lab", "port is not a number"),
        ("postgresql://lab@h/lab?sslmode=off", "postgresql://lab@h/lab?sslmode=off", "query"),
    ],
)
def test_bad_database_url(error, url, shown, why):
    message = error(LAB_DATABASE_URL=url)
    assert message.startswith(f"LAB_DATABASE_URL={shown!r} is invalid (")
    assert why in message
    assert message.endswith(f"; allowed values: {DATABASE_URL_FORMS}.")
    assert "secret" not in message


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("60", 60), ("none", None)])
def test_conn_max_age(load, value, expected):
    assert load(LAB_CONN_MAX_AGE=value)["DATABASES"]["default"]["CONN_MAX_AGE"] == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "+5", "1_000"])
def test_bad_conn_max_age(error, value):
    assert error(LAB_CONN_MAX_AGE=value) == (
        f"LAB_CONN_MAX_AGE={value!r} is invalid; allowed values: "
        "a whole number of seconds >= 0, or 'none' for unlimited."
    )


@pytest.mark.parametrize(
    ("env", "pool"),
    [
        ({}, True),
        ({"LAB_DB_POOL_SIZE": "8"}, {"min_size": 8, "max_size": 8, "timeout": 30.0}),
        (
            {"LAB_DB_POOL_SIZE": "2", "LAB_DB_POOL_TIMEOUT": "2.5"},
            {"min_size": 2, "max_size": 2, "timeout": 2.5},
        ),
        ({"LAB_DB_POOL_TIMEOUT": "5"}, {"timeout": 5.0}),
        ({"LAB_CONN_MAX_AGE": "0"}, True),
    ],
)
def test_pool(load, env, pool):
    db = load(LAB_DATABASE_URL=PG_URL, LAB_DB_POOL="1", **env)["DATABASES"]["default"]
    assert db["OPTIONS"]["pool"] == pool
    assert db["CONN_MAX_AGE"] == 0


def test_no_pool_by_default(load):
    assert "pool" not in load(LAB_DATABASE_URL=PG_URL)["DATABASES"]["default"]["OPTIONS"]


@pytest.mark.parametrize("max_age", ["60", "none"])
def test_pool_conflicts_with_conn_max_age(error, max_age):
    assert error(LAB_DATABASE_URL=PG_URL, LAB_DB_POOL="1", LAB_CONN_MAX_AGE=max_age) == (
        f"LAB_CONN_MAX_AGE={max_age!r} is invalid (Django's connection pool "
        "(LAB_DB_POOL=1) requires CONN_MAX_AGE=0); allowed values: 0."
    )


def test_pool_needs_postgresql(error):
    assert error(LAB_DB_POOL="on") == (
        "LAB_DB_POOL='on' is invalid (pooling needs PostgreSQL); allowed values: 0."
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LAB_DB_POOL_SIZE": "8"},
            "LAB_DB_POOL_SIZE='8' is invalid (it needs LAB_DB_POOL=1); allowed values: unset.",
        ),
        (
            {"LAB_DB_POOL_TIMEOUT": "5"},
            "LAB_DB_POOL_TIMEOUT='5' is invalid (it needs LAB_DB_POOL=1); "
            "allowed values: unset.",
        ),
        (
            {"LAB_DB_POOL": "1", "LAB_DB_POOL_SIZE": "0"},
            "LAB_DB_POOL_SIZE='0' is invalid; allowed values: a whole number >= 1.",
        ),
        (
            {"LAB_DB_POOL": "1", "LAB_DB_POOL_TIMEOUT": "0"},
            "LAB_DB_POOL_TIMEOUT='0' is invalid; allowed values: "
            "a number of seconds greater than 0, e.g. 30 or 0.5.",
        ),
    ],
)
def test_bad_pool_settings(error, env, message):
    assert error(LAB_DATABASE_URL=PG_URL, **env) == message


def test_guide_pool_is_the_guides_settings(load):
    db = load(LAB_DATABASE_URL=PG_URL, LAB_DJ_DB_CONN_POOL="1", LAB_STATEMENT_TIMEOUT_MS="250")[
        "DATABASES"]["default"]
    assert db["ENGINE"] == "dj_db_conn_pool.backends.postgresql"
    assert db["POOL_OPTIONS"] == {"POOL_SIZE": 10, "MAX_OVERFLOW": 10, "RECYCLE": 300}
    assert (db["NAME"], db["USER"], db["HOST"], db["CONN_MAX_AGE"]) == ("lab", "lab", "127.0.0.1", 0)
    # The other knobs still reach psycopg through OPTIONS; Django's own pool is off.
    assert db["OPTIONS"] == {"options": "-c statement_timeout=250", "connect_timeout": 5}
    off = load(LAB_DATABASE_URL=PG_URL, LAB_DJ_DB_CONN_POOL="0")["DATABASES"]["default"]
    assert off["ENGINE"] == "django.db.backends.postgresql" and "POOL_OPTIONS" not in off


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LAB_DJ_DB_CONN_POOL": "1"},
            "LAB_DJ_DB_CONN_POOL='1' is invalid (the guide's pool is set up for PostgreSQL); "
            "allowed values: 0.",
        ),
        (
            {"LAB_DATABASE_URL": PG_URL, "LAB_DJ_DB_CONN_POOL": "1", "LAB_DB_POOL": "1"},
            "LAB_DJ_DB_CONN_POOL='1' is invalid (LAB_DB_POOL=1 already pools: one pool at a "
            "time); allowed values: 0.",
        ),
        (
            {"LAB_DATABASE_URL": PG_URL, "LAB_DJ_DB_CONN_POOL": "1", "LAB_CONN_MAX_AGE": "60"},
            "LAB_CONN_MAX_AGE='60' is invalid (the guide's pool (LAB_DJ_DB_CONN_POOL=1) hands "
            "connections back to its pool only when Django closes them, which CONN_MAX_AGE=0 "
            "does after each request); allowed values: 0.",
        ),
    ],
)
def test_bad_guide_pool_settings(error, env, message):
    assert error(**env) == message


def test_guide_pool_profile_knob():
    assert Profile(dj_db_conn_pool=True).env()["LAB_DJ_DB_CONN_POOL"] == "1"
    assert "LAB_DJ_DB_CONN_POOL" not in Profile().env()
    assert Profile().with_knob("dj_db_conn_pool", "yes").dj_db_conn_pool is True
    for bad, message in (
        ({"conn_max_age": 60}, "dj_db_conn_pool needs conn_max_age=0"),
        ({"db_pool": True}, "dj_db_conn_pool and db_pool are two pools"),
        ({"database": "sqlite"}, "dj_db_conn_pool needs database='postgres'"),
        ({"dj_db_conn_pool": 1}, "dj_db_conn_pool must be True or False"),
    ):
        with pytest.raises(ProfileError, match=message):
            Profile(**{"dj_db_conn_pool": True, **bad})


def test_statement_timeout(load):
    s = load(LAB_DATABASE_URL=PG_URL, LAB_STATEMENT_TIMEOUT_MS="250")
    assert s["LAB_STATEMENT_TIMEOUT_MS"] == 250
    assert s["DATABASES"]["default"]["OPTIONS"]["options"] == "-c statement_timeout=250"
    zero = load(LAB_DATABASE_URL=PG_URL, LAB_STATEMENT_TIMEOUT_MS="0")
    assert "options" not in zero["DATABASES"]["default"]["OPTIONS"]
    assert load()["LAB_STATEMENT_TIMEOUT_MS"] == 0


def test_bad_statement_timeout(error):
    assert error(LAB_DATABASE_URL=PG_URL, LAB_STATEMENT_TIMEOUT_MS="1s") == (
        "LAB_STATEMENT_TIMEOUT_MS='1s' is invalid; allowed values: a whole number of ms >= 0."
    )
    assert error(LAB_STATEMENT_TIMEOUT_MS="250") == (
        "LAB_STATEMENT_TIMEOUT_MS='250' is invalid (statement_timeout is a PostgreSQL "
        "setting, not SQLite); allowed values: 0."
    )


def test_connect_timeout(load, error):
    options = load(LAB_DATABASE_URL=PG_URL, LAB_CONNECT_TIMEOUT="10")["DATABASES"][
        "default"
    ]["OPTIONS"]
    assert options == {"connect_timeout": 10}
    # A start-up guard for PostgreSQL only; SQLite has nothing to connect to.
    assert load(LAB_CONNECT_TIMEOUT="10")["DATABASES"]["default"]["OPTIONS"] == {}
    assert error(LAB_DATABASE_URL=PG_URL, LAB_CONNECT_TIMEOUT="soon") == (
        "LAB_CONNECT_TIMEOUT='soon' is invalid; allowed values: "
        "a whole number of seconds >= 0."
    )
