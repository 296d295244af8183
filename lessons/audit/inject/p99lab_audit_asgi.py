"""The audit's ASGI entry point (uvicorn, gunicorn -k asgi, uvicorn_worker, granian,
hypercorn, daphne): the project's ASGI application, with the lab's counters when asked
and the readiness path in front (``p99lab_audit_app`` says what and why)."""

from __future__ import annotations

from typing import Any

import p99lab_audit_app

_app, APP, _READY = p99lab_audit_app.build("asgi")


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The project, with ``READY_PATH`` answered in front of it."""
    if scope["type"] == "http" and scope["path"] == p99lab_audit_app.READY_PATH:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(_READY)).encode())]})
        await send({"type": "http.response.body", "body": _READY})
        return
    await _app(scope, receive, send)


p99lab_audit_app.preload()
