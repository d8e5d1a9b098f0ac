"""POST /orders with delivery_method LINK, and how a LINK order reads in the API:
one hosted claim URL per unit, never a code."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.crypto import gift_link_hash
from orders.enums import ApiScope, ProductKind
from orders.models import AuditEvent, GiftLink, Order, StatusChange
from orders.representations import OrderWebhookOut
from orders.vendors import simulated
from orders.vendors.simulated import scripted
from tests.factories import ProductFactory
from tests.helpers.api import make_api_user, order_body
from tests.helpers.gift_links import claim_tokens, link_order

pytestmark = pytest.mark.django_db

SECRET_FIELDS = ("card_number", "pin_code", "voucher_reference_number")


def test_a_link_order_is_delivered_unclaimed_with_a_claim_url_per_unit_and_no_code(shop, product):
    response = shop.post("/api/v1/orders", order_body(product, quantity=2, delivery_method="lInK"))
    assert response.status_code == 201, response.content
    placed = response.json()
    assert placed["delivery_method"] == "LINK"
    assert placed["vouchers"] == []
    assert [i["claim_status"] for i in placed["items"]] == [None, None]

    order = link_order(shop, product, quantity=2, reference_code="ORD-LINK-2")
    body = shop.get(f"/api/v1/orders/{order.pk}").json()

    assert (body["status"], body["sub_status"]) == ("DELIVERED", "GV_LINK_UNCLAIMED")
    assert body["delivery_method"] == "LINK"
    assert body["delivery_time"] == "INSTANT"  # from stock, as a CODE order would say
    assert len(body["vouchers"]) == 2
    links = {link.item.position: link for link in GiftLink.objects.filter(order=order)}
    for position, voucher in enumerate(body["vouchers"], 1):
        assert voucher["claim_url"].startswith("http://testserver/gift/")
        assert all(voucher[name] is None for name in SECRET_FIELDS)
        assert voucher["expires_at"] == links[position].expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [(i["claim_status"], i["claimed_at"]) for i in body["items"]] == [
        ("UNCLAIMED", None),
        ("UNCLAIMED", None),
    ]
    # Each URL's token is the link of its unit (looked up by its keyed hash).
    for position, token in enumerate(claim_tokens(body), 1):
        assert gift_link_hash(token) == links[position].token_hash
    # The read is audited as a read of links; no voucher was decrypted for it.
    assert AuditEvent.objects.filter(action="gift_link.read_api", order_id=order.pk).exists()
    assert not AuditEvent.objects.filter(action="voucher.read_api", order_id=order.pk).exists()


def test_links_are_made_in_the_delivering_commit_through_gv_link_pending(shop, product):
    order = link_order(shop, product)

    steps = list(StatusChange.objects.filter(order=order).values_list("to_status", "to_sub_status"))
    assert steps[-2:] == [("PENDING", "GV_LINK_PENDING"), ("DELIVERED", "GV_LINK_UNCLAIMED")]
    assert GiftLink.objects.filter(order=order).count() == 1


def test_a_link_order_filled_by_the_vendor_gets_its_links_too(shop, product):
    with scripted(simulated.DELAYED):
        order = link_order(shop, product, quantity=2, stocked=False)

    body = shop.get(f"/api/v1/orders/{order.pk}").json()
    assert (body["status"], body["sub_status"]) == ("DELIVERED", "GV_LINK_UNCLAIMED")
    assert body["delivery_time"] == "DELAYED"
    assert len(claim_tokens(body)) == 2
    assert all(v["card_number"] is None and v["pin_code"] is None for v in body["vouchers"])


def test_the_claim_url_is_built_on_public_base_url_when_set(shop, product, settings):
    settings.PUBLIC_BASE_URL = "https://gifts.example.com"
    order = link_order(shop, product)

    url = shop.get(f"/api/v1/orders/{order.pk}").json()["vouchers"][0]["claim_url"]
    assert url.startswith("https://gifts.example.com/gift/")


def test_without_vouchers_read_the_claim_url_is_withheld_too(shop, product, system_actor):
    order = link_order(shop, product)
    reader = make_api_user("Reader", system_actor, scopes=[ApiScope.ORDERS_READ])
    order.client = reader.client
    order.save(update_fields=["client"])

    body = reader.get(f"/api/v1/orders/{order.pk}").json()
    assert body["vouchers_redacted"] is True
    assert [v["claim_url"] for v in body["vouchers"]] == [None]
    assert body["vouchers"][0]["expires_at"] is not None


def test_code_stays_the_default_and_a_replay_must_repeat_the_method(shop, product):
    code = shop.post("/api/v1/orders", order_body(product, reference_code="ORD-CODE"))
    assert code.status_code == 201
    assert code.json()["delivery_method"] == "CODE"
    # An explicit CODE is the same request as none.
    again = shop.post(
        "/api/v1/orders", order_body(product, reference_code="ORD-CODE", delivery_method="code")
    )
    assert again.status_code == 200
    conflict = shop.post(
        "/api/v1/orders", order_body(product, reference_code="ORD-CODE", delivery_method="LINK")
    )
    assert conflict.status_code == 409

    link = order_body(product, reference_code="ORD-LINK", delivery_method="LINK")
    assert shop.post("/api/v1/orders", link).status_code == 201
    assert shop.post("/api/v1/orders", {**link, "delivery_method": "link"}).status_code == 200


def test_an_unknown_delivery_method_is_a_validation_error(shop, product):
    response = shop.post("/api/v1/orders", order_body(product, delivery_method="EMAIL"))
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert "delivery_method" in response.json()["message"]


def test_a_mobile_top_up_cannot_be_ordered_as_a_link(shop):
    topup = ProductFactory(kind=ProductKind.MOBILE_TOPUP, delivery_type="URL")
    response = shop.post(
        "/api/v1/orders",
        order_body(topup, delivery_method="LINK", recipient_phone="+447700900123"),
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "delivery_method"


def test_a_protected_link_product_needs_the_customer_email_its_code_is_sent_to(shop):
    protected = ProductFactory(delivery_type="URL", link_type="PROTECTED")
    body = order_body(protected, delivery_method="LINK", reference_code="ORD-NO-MAIL")
    body["customer"] = {"name": "Ada Lovelace", "email": "", "phone": ""}
    response = shop.post("/api/v1/orders", body)
    assert response.status_code == 400
    detail = response.json()["details"][0]
    assert detail["field"] == "customer.email" and "one-time code" in detail["message"]
    assert Order.objects.filter(product=protected).count() == 0

    placed = shop.post("/api/v1/orders", order_body(protected, delivery_method="LINK"))
    assert placed.status_code == 201, placed.content
    assert placed.json()["delivery_method"] == "LINK"
    # CODE orders of the product need no e-mail.
    body.update(delivery_method="CODE", reference_code="ORD-CODE-NO-MAIL")
    assert shop.post("/api/v1/orders", body).status_code == 201


def test_the_webhook_payload_of_a_link_order_says_link_and_carries_no_code(shop, product):
    order = link_order(shop, product)

    payload = OrderWebhookOut.from_orm(order).model_dump(mode="json")
    assert payload["delivery_method"] == "LINK"
    assert payload["sub_status"] == "GV_LINK_UNCLAIMED"
    text = str(payload)
    assert "/gift/" not in text
    assert not any(name in payload for name in (*SECRET_FIELDS, "vouchers", "claim_url"))


def test_reading_a_link_order_costs_what_a_code_order_does_whatever_its_size(shop, product):
    small = link_order(shop, product, quantity=1, reference_code="ORD-Q-1")
    large = link_order(shop, product, quantity=8, reference_code="ORD-Q-8")
    shop.get(f"/api/v1/orders/{small.pk}")  # the credential is cached by now
    counts = []
    for order in (small, large):
        with CaptureQueriesContext(connection) as queries:
            body = shop.get(f"/api/v1/orders/{order.pk}").json()
        assert len(claim_tokens(body)) == order.quantity
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]
