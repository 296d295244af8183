"""The lab project's Django inside the notebook kernel, for code a notebook runs itself.

Some lessons are about code, not servers: the guide's async view as written, the async
ORM, per-middleware cost.  ``lab.django_setup(profile)`` points Django at the lab's own
PostgreSQL and Valkey (``lab.django_env(profile)``) and calls ``django.setup()``, once per
kernel (Django's settings are process-wide: a second, different profile needs a kernel
restart, and says so).

The kernel runs an event loop, so plain ORM calls in a cell raise
``SynchronousOnlyOperation``; use the async ORM or ``sync_to_async`` as a view would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from lessons import config

__all__ = ["django_setup"]

_configured: dict[str, str] | None = None


def django_setup(django_env: Mapping[str, str], **extra_env: str) -> Any:
    """Configure and set up Django in this process with ``django_env`` (what
    ``Lab.django_env`` gives) and ``extra_env``; returns the settings."""
    global _configured
    env = {**django_env, **extra_env}
    if _configured is not None:
        if _configured != env:
            raise RuntimeError("Django is already set up in this kernel with other settings: "
                               "restart the kernel to use another profile in-process.")
        from django.conf import settings

        _close_connections()  # a re-created lab restarted PostgreSQL: drop stale ones
        return settings
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "lab.settings"
    if str(config.LAB_PROJECT) not in sys.path:
        sys.path.insert(0, str(config.LAB_PROJECT))
    import django
    from django.conf import settings

    django.setup()
    _configured = env
    return settings


def _close_connections() -> None:
    """Close Django's connections in this thread and in asgiref's single thread, where
    ``sync_to_async`` runs ORM calls made from a notebook cell."""
    from asgiref.sync import SyncToAsync
    from django.db import connections

    connections.close_all()
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)
