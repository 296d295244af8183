"""What the audit's WSGI and ASGI entry points share (``p99lab_audit_wsgi``/``_asgi``).

They serve the learner's project with the lab's server commands, and add two things in
front of it, neither of which reaches the project or is counted as a request:

* ``READY_PATH`` answers 200 with a small JSON body (the application served, the pid), so
  the lab knows the server is up without the project having a ``/healthz``;
* a view's exception is written to the server's log (stderr) with its traceback: under
  ``DEBUG = False`` Django's default logging sends it only to the site's admins by mail,
  and the audit names the exception when an endpoint answers 500;
* with ``P99LAB_AUDIT_INSTRUMENT`` set to the path of the lab's ``lab/instrument.py``,
  that very file is loaded (by path, as module ``p99lab_instrument``: the lab's ``lab``
  package is never put on the project's ``sys.path``, where a project's own ``lab``
  package would clash with it) and installed, so ``/__lab__/counters`` gives the same
  exact counts of hops, threads and queries as in the notebooks.

The application served is the project's own: ``WSGI_APPLICATION`` under WSGI; under
ASGI ``ASGI_APPLICATION`` when set, else the ``asgi`` module beside ``WSGI_APPLICATION``
(what ``startproject`` writes); Django's plain handler only when neither exists.  So a
project's wrapper around Django (static files, error reporting) is measured too.
Standard library, Django and asgiref only: this runs in the project's interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

READY_PATH = "/__p99lab__/ready"


def build(interface: str) -> tuple[Callable[..., Any], str, bytes]:
    """The application an entry point serves for ``interface`` ("wsgi" or "asgi"): the
    project's, behind the lab's counters when asked; its dotted path; the readiness body.
    The wrapper settings are read first, before the project's module is imported: a
    module that sets ``DJANGO_SETTINGS_MODULE`` itself then changes nothing."""
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018
    log_exceptions()
    lab_counters = counters()
    app, dotted = project_app(interface)
    if lab_counters is not None:
        app = getattr(lab_counters, interface)(app)  # instrument.wsgi or instrument.asgi
    return app, dotted, ready_body(dotted)


def counters() -> ModuleType | None:
    """The lab's counters module, installed; None when the audit did not ask for it."""
    path = os.environ.get("P99LAB_AUDIT_INSTRUMENT")
    if not path:
        return None
    spec = importlib.util.spec_from_file_location("p99lab_instrument", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the lab's counters from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.install()
    return module


def project_app(interface: str) -> tuple[Callable[..., Any], str]:
    """The project's application for ``interface`` ("wsgi" or "asgi") and its dotted path."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    wsgi = getattr(settings, "WSGI_APPLICATION", None) or ""
    if interface == "wsgi":
        candidates = [wsgi]
    else:
        sibling = wsgi.rsplit(".", 2)[0] + ".asgi.application" if wsgi.count(".") >= 2 else ""
        candidates = [getattr(settings, "ASGI_APPLICATION", None) or "", sibling]
    for dotted in candidates:
        module = dotted.rpartition(".")[0]
        if module and _exists(module):
            return import_string(dotted), dotted
    if interface == "wsgi":
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application(), "django.core.wsgi.get_wsgi_application()"
    from django.core.asgi import get_asgi_application

    return get_asgi_application(), "django.core.asgi.get_asgi_application()"


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package that is missing
        return False


def log_exceptions() -> None:
    """Write every exception a view raises to stderr (Django sends the signal from inside
    its ``except`` block, so the exception is still the current one)."""
    import traceback

    from django.core.signals import got_request_exception

    def write(sender: Any, request: Any = None, **kwargs: Any) -> None:
        what = f"{getattr(request, 'method', '?')} {getattr(request, 'path', '?')}"
        sys.stderr.write(f"p99lab: {what} raised:\n{traceback.format_exc()}")
        sys.stderr.flush()

    got_request_exception.connect(write, dispatch_uid="p99lab_audit", weak=False)


def ready_body(app: str) -> bytes:
    return json.dumps({"app": app, "pid": os.getpid()}).encode()


def preload() -> None:
    """Import every view now, at worker boot, as the lab's own entry points do: Django
    resolves the URLconf on the first request, which would land inside a measurement."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
