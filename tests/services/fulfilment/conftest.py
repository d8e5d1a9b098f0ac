"""Fixtures of the fulfilment tests: a funded client with live and test keys,
a product, and subprocess workers killed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from orders.models import ApiCredential, Client, Order, Product, Wallet
from orders.services.actors import Actor
from orders.services.clients import client_create, credential_issue
from orders.services.placing import Customer, order_create
from tests.factories import ProductFactory
from tests.helpers.tasks import WorkerPool


@dataclass
class Buyer:
    client: Client
    wallet: Wallet
    live: ApiCredential
    test: ApiCredential
    live_secret: str = ""
    test_secret: str = ""

    def api_headers(self, *, sandbox: bool = False) -> dict[str, str]:
        """X-API-Key / X-API-Secret of the live or the test credential."""
        credential = self.test if sandbox else self.live
        secret = self.test_secret if sandbox else self.live_secret
        return {"X-API-Key": credential.public_key, "X-API-Secret": secret}

    def place(
        self,
        product: Product,
        reference_code: str,
        *,
        quantity: int = 1,
        denomination: str = "25.00",
        sandbox: bool = False,
        **extra: Any,
    ) -> Order:
        credential = self.test if sandbox else self.live
        placed = order_create(
            client=self.client,
            actor=Actor.for_credential(credential),
            credential=credential,
            product_id=product.pk,
            denomination=denomination,
            quantity=quantity,
            reference_code=reference_code,
            customer=Customer(name="Ada", email="ada@example.com"),
            **extra,
        )
        return placed.order


@pytest.fixture
def buyer(system_actor: Actor) -> Buyer:
    client, wallet, issued = client_create(
        name="Orbital Rewards", currency="USD", balance="5000.00", actor=system_actor
    )
    test = credential_issue(client=client, actor=system_actor, mode=ApiCredential.Mode.TEST)
    return Buyer(client, wallet, issued.credential, test.credential, issued.secret, test.secret)


@pytest.fixture
def product() -> Product:
    return cast(Product, ProductFactory(name="Nebula Books", bulk_limit=40))


@pytest.fixture
def workers(transactional_db: None, tmp_path: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(tmp_path)
    yield pool
    pool.stop_all()
