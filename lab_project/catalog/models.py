"""
The lab's tables: realistic enough for list, filter, join and aggregate endpoints.

No model sets ``Meta.ordering``: a default ORDER BY would be added to every query, so
the endpoints order explicitly and a lesson sees exactly the SQL it asks for.
"""

from django.db import models
from django.utils import timezone


class Item(models.Model):
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=50)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.IntegerField()
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["category"], name="catalog_item_category_idx"),
            models.Index(fields=["active"], name="catalog_item_active_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status"], name="catalog_order_status_idx")]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"
