"""GET /api/v1/wallet and /wallet/transactions: balances and the keyset ledger."""

from __future__ import annotations

import pytest

from orders.services.clients import wallet_open
from orders.services.wallets import wallet_top_up
from tests.helpers.api import order_body

pytestmark = pytest.mark.django_db


def test_balances_per_currency(shop, system_actor):
    eur = wallet_open(client=shop.client, currency="EUR")
    wallet_top_up(wallet_id=eur.pk, amount="12.50", actor=system_actor)
    wallets = shop.get("/api/v1/wallet").json()["wallets"]
    assert [(w["currency"], w["balance"]) for w in wallets] == [("EUR", "12.50"), ("USD", "500.00")]


def test_ledger_pages_newest_first_with_signed_amounts(shop, product, system_actor):
    for n in range(3):
        assert (
            shop.post("/api/v1/orders", order_body(product, reference_code=f"L-{n}")).status_code
            == 201
        )
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = shop.get("/api/v1/wallet/transactions", params).json()
        seen += page["results"]
        cursor = page["next"]
        if not cursor:
            break
    assert [e["kind"] for e in seen] == ["ORDER_DEBIT"] * 3 + ["TOP_UP"]
    assert [e["amount"] for e in seen] == ["-25.00"] * 3 + ["500.00"]
    assert [e["balance_after"] for e in seen] == ["425.00", "450.00", "475.00", "500.00"]
    assert seen[0]["order_id"] is not None and seen[-1]["order_id"] is None
    assert len({e["id"] for e in seen}) == 4


def test_currency_filter_and_isolation(shop, rival, system_actor):
    eur = wallet_open(client=shop.client, currency="EUR")
    wallet_top_up(wallet_id=eur.pk, amount="5.00", actor=system_actor)
    only_eur = shop.get("/api/v1/wallet/transactions", {"currency": "eur"}).json()["results"]
    assert [(e["currency"], e["amount"]) for e in only_eur] == [("EUR", "5.00")]
    rival_entries = rival.get("/api/v1/wallet/transactions").json()["results"]
    assert all(e["currency"] == "USD" for e in rival_entries)
    assert len(rival_entries) == 1
    assert rival.get("/api/v1/wallet").json()["wallets"][0]["balance"] == "500.00"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"cursor": "nope"}, "cursor"), ({"limit": 0}, "limit"), ({"currency": "EURO"}, "currency")],
)
def test_bad_ledger_parameters(shop, params, field):
    response = shop.get("/api/v1/wallet/transactions", params)
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == field
