"""Run by ``lessons.audit.project.read_facts`` in the PROJECT's interpreter, never imported
by the lab: ``django.setup()`` with the project's settings, then one JSON line of facts.

It imports only Django and the project (not ``lessons``), so it works in the project's own
virtualenv.  It opens no database connection and no cache connection: everything is read
from settings, from the URLconf and from the classes they name.  Written for Python >= 3.8.
"""

import importlib
import inspect
import json
import os
import re
import sys

ROOT = os.path.realpath(os.getcwd())
PACKAGES = ("Django", "djangorestframework", "django-ninja", "django-redis", "redis", "hiredis",
            "psycopg", "psycopg2", "psycopg-pool", "gunicorn", "uvicorn", "uvicorn-worker",
            "django-silk", "django-debug-toolbar", "dj-database-url")
_SECRET = re.compile(r"(//[^/@:]*:)[^/@]*@")


def relative(path):
    """A file under the project root as a relative path, anything else as it is."""
    if not path:
        return None
    real = os.path.realpath(path)
    if real == ROOT or real.startswith(ROOT + os.sep):
        return os.path.relpath(real, ROOT)
    return real


def source_of(obj):
    """(file, line) where a view or class is defined, through decorators."""
    try:
        target = inspect.unwrap(obj)
        return relative(inspect.getsourcefile(target)), inspect.getsourcelines(target)[1]
    except (TypeError, OSError, ValueError):
        return None, None


def versions():
    try:
        from importlib import metadata
    except ImportError:
        return {}
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except Exception:
            found[name] = None
    return found


def middleware_facts(paths):
    """Per MIDDLEWARE entry what Django's load_middleware reads (sync_capable defaults to
    True, async_capable to False) and the MiddlewareMixin hooks each costing one
    sync_to_async hop under ASGI."""
    from django.utils.deprecation import MiddlewareMixin
    from django.utils.module_loading import import_string

    out = []
    for path in paths:
        item = {"path": path}
        try:
            mw = import_string(path)
        except Exception as exc:
            item["error"] = "%s: %s" % (type(exc).__name__, exc)
            out.append(item)
            continue
        item["sync_capable"] = bool(getattr(mw, "sync_capable", True))
        item["async_capable"] = bool(getattr(mw, "async_capable", False))
        is_mixin = inspect.isclass(mw) and issubclass(mw, MiddlewareMixin)
        item["mixin"] = bool(is_mixin and "__acall__" not in vars(mw))
        item["hooks"] = [h for h in ("process_request", "process_view", "process_response")
                         if hasattr(mw, h) and not inspect.iscoroutinefunction(getattr(mw, h))]
        item["file"], item["line"] = source_of(mw)
        out.append(item)
    return out


def scrub(value):
    """Settings as JSON, without passwords."""
    if isinstance(value, dict):
        return {str(k): ("(removed)" if str(k).lower() in ("password", "passfile") else scrub(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _SECRET.sub(r"\1(removed)@", value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def caches_facts(caches):
    """CACHES without secrets; for a PARSER_CLASS, whether it imports here."""
    from django.utils.module_loading import import_string

    out = scrub(caches)
    for alias, conf in caches.items():
        parser = (conf.get("OPTIONS") or {}).get("PARSER_CLASS")
        if isinstance(parser, str):
            try:
                import_string(parser)
                out[alias]["parser_error"] = None
            except Exception as exc:
                out[alias]["parser_error"] = "%s: %s" % (type(exc).__name__, exc)
    return out


def pattern_text(pattern):
    """(URL text, has parameters) of one pattern of the URLconf."""
    from django.urls.resolvers import LocalePrefixPattern, RoutePattern

    if isinstance(pattern, LocalePrefixPattern):
        return pattern.language_prefix, False
    if isinstance(pattern, RoutePattern):
        route = str(pattern._route)
        return route, bool(pattern.converters) or "<" in route
    regex = str(pattern._regex)
    text = regex[1:] if regex.startswith("^") else regex
    text = re.sub(r"(\$|\\Z)$", "", text)
    plain = text.replace("\\/", "/").replace("\\.", ".").replace("\\-", "-")
    return plain, pattern.regex.groups > 0 or bool(re.search(r"[\\^$.*+?()\[\]{}|]", plain))


def view_facts(callback):
    """The view's dotted name, whether Django runs it as a coroutine, and its source."""
    try:
        from asgiref.sync import iscoroutinefunction  # inspect's on Python >= 3.12, as Django 6.1's handler
    except ImportError:  # older asgiref
        from asyncio import iscoroutinefunction

    ops = ninja_operations(callback)
    target = (getattr(callback, "view_class", None) or getattr(callback, "cls", None)
              or (ops[0].view_func if ops else callback))
    name = "%s.%s" % (getattr(target, "__module__", "?"),
                      getattr(target, "__qualname__", type(target).__name__))
    file, line = source_of(target)
    return {"view": name, "is_async": bool(iscoroutinefunction(callback)),
            "file": file, "line": line,
            "in_project": bool(file) and not os.path.isabs(file)}


def ninja_operations(callback):
    """django-ninja routes to a wrapper it defines (``PathView.get_view``) around the
    ``PathView`` in its closure: that PathView's operations hold the project's functions."""
    if not str(getattr(callback, "__module__", "")).startswith("ninja"):
        return []
    for cell in getattr(callback, "__closure__", None) or ():
        try:
            ops = getattr(cell.cell_contents, "operations", None)
        except ValueError:  # an empty cell
            continue
        if ops and hasattr(ops[0], "view_func"):
            return ops
    return []


def routes(patterns, prefix="", params=False):
    """Every route of the URLconf, depth first, in URLconf order."""
    from django.urls import URLResolver

    out = []
    for p in patterns:
        text, has = pattern_text(p.pattern)
        if isinstance(p, URLResolver):
            out.extend(routes(p.url_patterns, prefix + text, params or has))
            continue
        item = {"path": "/" + prefix + text, "has_params": params or has,
                "name": getattr(p, "name", None)}
        item.update(view_facts(p.callback))
        out.append(item)
    return out


def main():
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections
    from django.urls import get_resolver

    module = sys.modules.get(os.environ["DJANGO_SETTINGS_MODULE"])
    databases = {alias: dict(connections.settings[alias]) for alias in connections.settings}
    facts = {
        "python": sys.executable,
        "python_version": "%d.%d.%d" % sys.version_info[:3],
        "versions": versions(),
        "settings_module": os.environ["DJANGO_SETTINGS_MODULE"],
        "settings_file": relative(getattr(module, "__file__", None)),
        "DEBUG": bool(settings.DEBUG),
        "INSTALLED_APPS": list(settings.INSTALLED_APPS),
        "MIDDLEWARE": list(settings.MIDDLEWARE),
        "middleware": middleware_facts(settings.MIDDLEWARE),
        "DATABASES": scrub(databases),
        "CONN_MAX_AGE": {a: d.get("CONN_MAX_AGE") for a, d in databases.items()},
        "CACHES": caches_facts(settings.CACHES),
        "SILKY": scrub({k: getattr(settings, k) for k in dir(settings) if k.startswith("SILKY_")}),
        "INTERNAL_IPS": list(getattr(settings, "INTERNAL_IPS", [])),
        "ROOT_URLCONF": settings.ROOT_URLCONF,
        "WSGI_APPLICATION": getattr(settings, "WSGI_APPLICATION", None),
        "ASGI_APPLICATION": getattr(settings, "ASGI_APPLICATION", None),
        "routes": routes(get_resolver().url_patterns),
    }
    sys.stdout.write("\n" + json.dumps(facts, default=str) + "\n")


if __name__ == "__main__":  # run with ``python -c``; importing it does nothing
    main()
