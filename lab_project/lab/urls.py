"""
URLs of the lab project.

Each lesson's endpoints live in their own ``api`` module, mounted under the lesson's
prefix. Paths have no trailing slash, so CommonMiddleware's APPEND_SLASH never answers
with a redirect instead of the view.
"""

from api.health import healthz
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
    path("admin/", admin.site.urls),
]
