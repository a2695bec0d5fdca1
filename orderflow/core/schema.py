"""OpenAPI description of the store credentials (drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class StoreAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "orderflow.core.tenancy.StoreAuthentication"
    name = ["storeKey", "storeId"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A store API key (`manage.py create_api_key`).",
            },
            {"type": "apiKey", "in": "header", "name": "X-Store-ID", "description": "The store's slug."},
        ]
