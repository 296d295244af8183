from django.http import JsonResponse
from rest_framework.generics import ListAPIView

from .models import Product
from .serializers import ProductSerializer


def product_list(request):
    """Sync function view: the first ten active products."""
    items = list(Product.objects.filter(active=True).values("id", "name", "price")[:10])
    return JsonResponse({"items": items}, json_dumps_params={"default": str})


async def product_count(request):
    """Async function view: one count through the async ORM."""
    return JsonResponse({"count": await Product.objects.filter(active=True).acount()})


def product_detail(request, pk: int):
    """A route with a parameter (not measured by default)."""
    p = Product.objects.filter(pk=pk).values("id", "name", "price").first()
    if p is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse(p, json_dumps_params={"default": str})


class ProductListAPI(ListAPIView):
    """A DRF endpoint over the same table."""

    queryset = Product.objects.filter(active=True)[:10]
    serializer_class = ProductSerializer
    pagination_class = None
