"""Core endpoints: the store the credentials act for (also the cheapest authenticated call)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class StoreSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()


class CurrentStoreView(APIView):
    """`GET /api/v1/store` — who am I acting for. Touches no tenant table: the baseline for
    measuring what the rest of a request costs on top of middleware and authentication."""

    @extend_schema(responses=StoreSerializer)
    def get(self, request):
        store = request.store
        return Response({"slug": store.slug, "name": store.name, "currency": store.currency})
