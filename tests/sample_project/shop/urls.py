"""URL configuration for shop project."""
from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("api/", include("catalog.urls")),
]

if apps.is_installed("django.contrib.admin"):
    from django.contrib import admin

    urlpatterns.append(path("admin/", admin.site.urls))

if apps.is_installed("silk"):
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))
