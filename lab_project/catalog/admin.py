"""
Admin for the catalog. Orders show their customer without N+1 queries, and pick it by
id rather than from a <select> of every customer.
"""

from django.contrib import admin

from .models import Customer, Item, Order


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "category", "price", "quantity", "active", "created"]
    list_filter = ["active", "category"]
    search_fields = ["name"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "email", "created"]
    search_fields = ["name", "email"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "status", "amount", "created"]
    list_filter = ["status"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
