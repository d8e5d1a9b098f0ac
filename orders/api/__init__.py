"""The JSON API v1 (django-ninja): `orders.api.api.api` is mounted at /api/v1/."""
