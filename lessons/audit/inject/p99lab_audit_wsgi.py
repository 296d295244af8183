"""The audit's WSGI entry point (gunicorn sync/gthread, granian --interface wsgi, uWSGI):
the project's WSGI application, with the lab's counters when asked and the readiness path
in front (``p99lab_audit_app`` says what and why)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import p99lab_audit_app

_app, APP, _READY = p99lab_audit_app.build("wsgi")


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The project, with ``READY_PATH`` answered in front of it."""
    if environ.get("PATH_INFO") == p99lab_audit_app.READY_PATH:
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(_READY)))])
        return [_READY]
    return _app(environ, start_response)


p99lab_audit_app.preload()
