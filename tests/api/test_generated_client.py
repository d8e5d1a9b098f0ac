"""A partner's generated client runs the whole flow against a live server.

openapi-python-client writes a client from the served OpenAPI document (as a
partner would), and that client exchanges the key for a token, lists products,
places an order, polls it until a real worker process delivers it and reads its
vouchers. The generated models parse every response strictly (required fields,
enums) and undeclared statuses raise, so a drift between the document and the
answers fails here.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from tests.factories import ProductFactory, add_stock
from tests.helpers.api import make_api_user
from tests.helpers.tasks import WorkerPool, wait_until

pytestmark = pytest.mark.postgres

VENV_BIN = Path(sys.executable).parent


def _generate_client(spec_url: str, tmp_path: Path) -> Path:
    spec = tmp_path / "openapi.json"
    with urllib.request.urlopen(spec_url, timeout=10) as answer:  # noqa: S310 - the live server
        spec.write_bytes(answer.read())
    out = tmp_path / "starship_client"
    # --meta none writes just the package; PATH lets its ruff post-hook run.
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    return out


def test_a_generated_client_places_polls_and_reads_an_order(
    live_server, transactional_db, system_actor, tmp_path
):
    shop = make_api_user("Generated Client Shop", system_actor, balance="100.00")
    product = ProductFactory(name="Generated Gift Card", denominations=["25.00"])
    add_stock(product, "25.00", 2)

    _generate_client(f"{live_server.url}/api/v1/openapi.json", tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module("starship_client")
        token_create = importlib.import_module(
            "starship_client.api.authentication.orders_api_routers_auth_token_create"
        )
        product_list = importlib.import_module(
            "starship_client.api.products.orders_api_routers_products_product_list"
        )
        order_create = importlib.import_module(
            "starship_client.api.orders.orders_api_routers_orders_order_create_view"
        )
        order_detail = importlib.import_module(
            "starship_client.api.orders.orders_api_routers_orders_order_detail"
        )
        models = importlib.import_module("starship_client.models")

        anonymous = package.Client(base_url=live_server.url, raise_on_unexpected_status=True)
        token = token_create.sync(
            client=anonymous,
            body=models.TokenIn(api_key=shop.credential.public_key, api_secret=shop.secret),
        )
        assert isinstance(token, models.TokenOut), token
        api = package.AuthenticatedClient(
            base_url=live_server.url, token=token.access_token, raise_on_unexpected_status=True
        )

        listed = product_list.sync(client=api)
        assert isinstance(listed, models.ProductListOut), listed
        assert product.pk in [item.id for item in listed.results]

        placed = order_create.sync(
            client=api,
            body=models.OrderCreateIn(
                product_id=product.pk,
                denomination="25.00",
                quantity=2,
                reference_code="GEN-CLIENT-1",
                customer=models.CustomerIn(name="Ada Lovelace", email="ada@example.com"),
            ),
        )
        assert isinstance(placed, models.OrderDetailOut), placed
        assert placed.status.value == "PLACED" and placed.vouchers == []

        polled = [placed]

        def delivered() -> bool:
            answer = order_detail.sync(placed.id, client=api)
            assert isinstance(answer, models.OrderDetailOut), answer
            polled.append(answer)
            return answer.status.value == "DELIVERED"

        workers = WorkerPool(tmp_path)
        workers.start()
        try:
            wait_until(delivered, timeout=60, what="the order to be DELIVERED")
        finally:
            workers.stop_all()
        order = polled[-1]
        assert len(order.vouchers) == 2
        assert all(voucher.card_number and voucher.pin_code for voucher in order.vouchers)
        assert Decimal(order.amount) == Decimal("50.00")
        # The wire format stays what the spec promises: money as two-decimal strings.
        raw = json.loads(api.get_httpx_client().get(f"/api/v1/orders/{placed.id}").content.decode())
        assert raw["amount"] == "50.00" and raw["status"] == "DELIVERED"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("starship_client")]:
            del sys.modules[name]
