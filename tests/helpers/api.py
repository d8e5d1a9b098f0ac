"""The API as a partner calls it: a client with a funded wallet, its key pair and an
HTTP client; the body of an order request."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.test import Client as HttpClient

from orders.models import ApiCredential, Client, Product, Wallet
from orders.services.clients import client_create


@dataclass
class ApiUser:
    """An API client as a partner sees it: its key pair and an HTTP client."""

    client: Client
    wallet: Wallet
    credential: ApiCredential
    secret: str
    http: HttpClient

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.credential.public_key, "X-API-Secret": self.secret}

    def get(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.http.get(
            path, data, headers={**self.headers, **extra.pop("headers", {})}, **extra
        )

    def post(self, path: str, body: Any = None, **extra: Any) -> Any:
        raw = body if isinstance(body, str) else json.dumps(body)
        return self.http.post(
            path,
            raw,
            content_type="application/json",
            headers={**self.headers, **extra.pop("headers", {})},
            **extra,
        )

    def balance(self) -> Decimal:
        self.wallet.refresh_from_db()
        return self.wallet.balance


def make_api_user(
    name: str,
    actor: Any,
    *,
    balance: str = "500.00",
    currency: str = "USD",
    scopes: Iterable[str] | None = None,
    allowed_networks: Iterable[str] = (),
) -> ApiUser:
    client, wallet, issued = client_create(
        name=name,
        currency=currency,
        balance=balance,
        actor=actor,
        scopes=scopes,
        allowed_networks=allowed_networks,
    )
    return ApiUser(
        client=client,
        wallet=wallet,
        credential=issued.credential,
        secret=issued.secret,
        http=HttpClient(),
    )


def order_body(product: Product, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "product_id": product.pk,
        "denomination": "25.00",
        "quantity": 1,
        "reference_code": "ORD-ABC123",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"},
    }
    body.update(overrides)
    return body
