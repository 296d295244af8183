"""
Lessons 10 and 11, profiling: which requests the profilers look at, and what their files
are called. ``LAB_PROFILER`` (lab/settings.py) picks the profiler; this module is
imported only when it is silk or pyinstrument.

Only the lab's API endpoints of the profiling lessons are profiled, as the guide limits
silk to its ``/api/`` (``SILKY_INTERCEPT_FUNC = lambda request:
request.path.startswith('/api/')``): lesson 10's ``/l10/`` endpoints, and lesson 11's
``/l11/`` endpoint, whose checklist step "Profile with django-silk" must profile the
requests it measures. A profiler that recorded every endpoint would also slow down (and
fill its storage with) the requests nobody asked about. Every other request still pays
the profiler's middleware and this check, which is what a notebook measures as the cost
of merely installing it.
"""

from __future__ import annotations

import os
from typing import Any

PROFILED_PREFIXES = ("/l10/", "/l11/")


def is_profiled(request: Any) -> bool:
    """``SILKY_INTERCEPT_FUNC`` and ``PYINSTRUMENT_SHOW_CALLBACK``: profile this request?"""
    return request.path.startswith(PROFILED_PREFIXES)


def pyinstrument_filename(request: Any, session: Any, renderer: Any) -> str:
    """``PYINSTRUMENT_FILENAME_CALLBACK``: one file per request, sortable by time.

    pyinstrument's default name (duration in ms, path, timestamp in whole seconds) is the
    same for two requests of one path that take as long within the same second, which
    is common under load: the second page would overwrite the first. The start time to
    the microsecond and the worker's pid keep every page; the path comes last,
    without its query string (no ``?`` or ``&`` in file names).
    """
    path = request.path.replace("/", "_")[:100]
    return f"{session.start_time:.6f}-{os.getpid()}{path}.{renderer.output_file_extension}"
