"""Fixtures of the API tests: a client with a funded wallet and a credential."""

from __future__ import annotations

import pytest

from orders.models import Product
from tests.factories import ProductFactory
from tests.helpers.api import ApiUser, make_api_user


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    """Tests make many calls; test_ratelimit.py lowers the limits it checks."""
    settings.API_RATE_LIMIT_PER_MINUTE = 10_000
    settings.API_RATE_LIMIT_PER_10_SECONDS = 10_000
    settings.API_RATE_LIMIT_ORDER_READS_PER_HOUR = 10_000


@pytest.fixture
def shop(db, system_actor) -> ApiUser:
    return make_api_user("My Shop", system_actor)


@pytest.fixture
def rival(db, system_actor) -> ApiUser:
    return make_api_user("Rival Shop", system_actor)


@pytest.fixture
def product(db) -> Product:
    return ProductFactory(name="Acme Gift Card", denominations=["10.00", "25.00", "50.00"])
