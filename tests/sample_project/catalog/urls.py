from django.urls import path

from . import views

urlpatterns = [
    path("products/", views.product_list, name="product-list"),
    path("products/count/", views.product_count, name="product-count"),
    path("products/<int:pk>/", views.product_detail, name="product-detail"),
    path("drf/products/", views.ProductListAPI.as_view(), name="drf-product-list"),
]
