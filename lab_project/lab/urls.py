"""
URLs of the lab project.

Each lesson's endpoints live in their own ``api`` module, mounted under the lesson's
prefix. Paths have no trailing slash, so CommonMiddleware's APPEND_SLASH never answers
with a redirect instead of the view.

A profiler's own pages are mounted only when ``LAB_PROFILER`` chose it: silk's dashboard
at ``/silk/``, the debug toolbar's panels at ``/__debug__/``.
"""

from api.health import healthz
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("healthz", healthz),
    path("l01/", include("api.l01")),
    path("l02/", include("api.l02")),
    path("l03/", include("api.l03")),
    path("l04/", include("api.l04")),
    path("l05/", include("api.l05")),
    path("l06/", include("api.l06")),
    path("l07/", include("api.l07")),
    path("l08/", include("api.l08")),
    path("l09/", include("api.l09")),
    path("l10/", include("api.l10")),
    path("l11/", include("api.l11")),
    path("admin/", admin.site.urls),
]

if settings.LAB_PROFILER == "silk":
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))
elif settings.LAB_PROFILER == "debug-toolbar":
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
