"""The same shop with the audit's advice applied (the tests' clean variant): DEBUG off, no
profiler, an API-sized middleware stack, Django's native connection pool with both
timeouts, one shared cache, and no profiler URLs."""

from .settings import *  # noqa: F403
from .settings import DATABASES, INSTALLED_APPS

DEBUG = False

INSTALLED_APPS = [
    app for app in INSTALLED_APPS
    if app not in ("silk", "django.contrib.admin", "django.contrib.messages", "django.contrib.sessions")
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

DATABASES = {
    "default": {
        **DATABASES["default"],
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "pool": {"min_size": 2, "max_size": 4, "timeout": 2},
            "connect_timeout": 5,
            "options": "-c statement_timeout=5000",
        },
    }
}

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/1",
    },
}

TEMPLATES = []
