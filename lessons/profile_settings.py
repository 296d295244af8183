"""``Profile.settings_snippet()``: a profile written as the settings.py lines a project
would use (what the lab's LAB_* variables turn into in lab_project/lab/settings.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lessons.profile import Profile

__all__ = ["render"]

_PRESETS = {
    "default": ["django.middleware.security.SecurityMiddleware",
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
                "django.middleware.clickjacking.XFrameOptionsMiddleware"],
    "minimal": ["django.middleware.security.SecurityMiddleware",
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.common.CommonMiddleware"],
    "none": [],
}
_CACHES = {
    "none": None,
    "locmem": "django.core.cache.backends.locmem.LocMemCache",
    "django-redis": "django_redis.cache.RedisCache",
    "redis": "django.core.cache.backends.redis.RedisCache",
}


def render(p: Profile) -> str:
    middleware = _PRESETS.get(p.middleware) or [m.strip() for m in p.middleware.split(",") if m.strip()]
    options: list[str] = []
    if p.db_pool:
        options.append('"pool": ' + (f'{{"min_size": {p.db_pool_size}, "max_size": {p.db_pool_size}}}'
                                      if p.db_pool_size else "True"))
    if p.statement_timeout_ms:
        options.append(f'"options": "-c statement_timeout={p.statement_timeout_ms}"')
    lines = [
        f"DEBUG = {p.debug}",
        "MIDDLEWARE = [" + "".join(f'\n    "{m}",' for m in middleware) + ("\n]" if middleware else "]"),
        'DATABASES = {"default": {',
        '    "ENGINE": "django.db.backends.postgresql",  # NAME, USER, HOST... as yours',
        f'    "CONN_MAX_AGE": {p.conn_max_age},',
        f'    "CONN_HEALTH_CHECKS": {p.conn_health_checks},',
        '    "OPTIONS": {' + ", ".join(options) + "},",
        "}}",
    ]
    backend = _CACHES[p.cache]
    if backend:
        location = '"lab"' if p.cache == "locmem" else '"redis://127.0.0.1:6379/0"'
        lines.append(f'CACHES = {{"default": {{"BACKEND": "{backend}", "LOCATION": {location}}}}}')
    return "\n".join(lines)
