"""Self-service webhooks (scope webhooks:manage): register, list, deactivate, rotate,
test, the delivery log and replay; and the SSRF guard, at registration and at delivery."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from orders.addresses import is_public_address
from orders.models import AuditEvent, Order, WebhookAttempt, WebhookDelivery
from orders.services.webhooks import REFUSED_PRIVATE, TEST_EVENT, webhook_sign
from tests.factories import stock
from tests.helpers.api import ApiUser, order_body
from tests.helpers.tasks import run_ready_tasks, wait_until
from tests.helpers.webhooks import verify_starship_signature

PUBLIC_IP = "93.184.216.34"


def _register(user: ApiUser, url: str, events: list[str] | None = None) -> Any:
    return user.post("/api/v1/webhooks", {"url": url, "events": events or ["order.delivered"]})


def _signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The signature is webhook_sign's for this body, and the docs' recipe accepts it."""
    header = headers["Starship-Signature"]
    timestamp = int(dict(part.split("=", 1) for part in header.split(","))["t"])
    expected = webhook_sign(secret=secret, timestamp=timestamp, body=body.decode())
    return header == expected and verify_starship_signature(secret, header, body)


def _delivery_status(delivery_id: int) -> str:
    return WebhookDelivery.objects.get(pk=delivery_id).status


def _log(user: ApiUser, endpoint_id: int) -> list[dict[str, Any]]:
    response = user.get(f"/api/v1/webhooks/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- Registering and listing -------------------------------------------------------


@pytest.mark.django_db
def test_registering_answers_the_secret_once_and_the_list_never_shows_it(shop):
    created = _register(shop, "https://hooks.example.com/starship", ["ORDER.FAILED"])

    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["url"] == "https://hooks.example.com/starship"
    assert body["events"] == ["order.failed"] and body["is_active"] is True
    assert body["created_at"].endswith("Z")

    listed = shop.get("/api/v1/webhooks")
    assert listed.status_code == 200
    assert listed.json()["results"] == [{k: v for k, v in body.items() if k != "secret"}]
    assert secret.encode() not in listed.content and b"secret" not in listed.content
    event = AuditEvent.objects.get(action="webhook.endpoint_create")
    assert event.actor_credential_id == shop.credential.pk
    assert secret not in json.dumps(event.data)


@pytest.mark.django_db
def test_an_unknown_event_is_refused_naming_the_valid_ones(shop):
    response = _register(shop, "https://hooks.example.com/x", ["order.delivered", "order.eaten"])

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert "order.partially_delivered" in body["message"]
    assert "order.refunded" in body["details"][0]["valid"]


@pytest.mark.django_db
def test_another_clients_endpoint_is_not_found_for_every_operation(shop, rival):
    theirs = _register(rival, "https://hooks.example.com/rival").json()["id"]
    base = f"/api/v1/webhooks/{theirs}"

    answers = [
        shop.http.delete(base, headers=shop.headers),
        shop.post(f"{base}/rotate-secret"),
        shop.post(f"{base}/test"),
        shop.get(f"{base}/deliveries"),
        shop.post(f"{base}/deliveries/1/replay"),
    ]

    assert [a.status_code for a in answers] == [404] * 5
    assert {a.json()["error"] for a in answers} == {"not_found"}
    assert shop.get("/api/v1/webhooks").json()["results"] == []
    assert rival.get("/api/v1/webhooks").json()["results"][0]["is_active"] is True
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_deactivating_keeps_the_endpoint_listed_and_stops_test_events(shop):
    endpoint_id = _register(shop, "https://hooks.example.com/x").json()["id"]

    gone = shop.http.delete(f"/api/v1/webhooks/{endpoint_id}", headers=shop.headers)
    again = shop.http.delete(f"/api/v1/webhooks/{endpoint_id}", headers=shop.headers)

    assert gone.status_code == 204 and again.status_code == 204
    assert shop.get("/api/v1/webhooks").json()["results"][0]["is_active"] is False
    refused = shop.post(f"/api/v1/webhooks/{endpoint_id}/test")
    assert refused.status_code == 409
    assert refused.json()["error"] == "webhook_endpoint_inactive"
    assert AuditEvent.objects.filter(action="webhook.endpoint_deactivate").count() == 1


# --- Deliveries --------------------------------------------------------------------


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_a_delivered_order_is_sent_signed_and_a_failure_is_retried(
    shop, product, receiver, settings
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    hook = receiver(failures=2)
    created = _register(shop, hook.url).json()
    stock(product, 1)

    placed = shop.post("/api/v1/orders", order_body(product))
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["id"]
    wait_until(
        lambda: WebhookDelivery.objects.filter(order_id=order_id, status="DELIVERED").exists(),
        tick=run_ready_tasks,
        what="the order.delivered webhook",
    )

    assert Order.objects.get(pk=order_id).status == "DELIVERED"
    assert len(hook.requests) == 3  # two 500s, then 200
    headers, body = hook.requests[-1]
    assert _signed_with(created["secret"], headers, body)
    event = json.loads(body)
    assert event["event"] == "order.delivered" and event["data"]["order"]["id"] == order_id
    [entry] = _log(shop, created["id"])
    assert entry["order_id"] == order_id and entry["event"] == "order.delivered"
    assert entry["status"] == "DELIVERED" and entry["attempts"] == 3
    assert entry["last_status_code"] == 200 and entry["delivered_at"].endswith("Z")
    assert "payload" not in entry and "secret" not in entry


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_a_failed_delivery_is_replayed_through_the_api(shop, product, receiver, settings):
    settings.WEBHOOK_RETRY_HOURS = 0  # the first failure is the last: FAILED at once
    hook = receiver(failures=1)
    created = _register(shop, hook.url).json()
    stock(product, 1)
    order_id = shop.post("/api/v1/orders", order_body(product)).json()["id"]
    wait_until(
        lambda: WebhookDelivery.objects.filter(order_id=order_id, status="FAILED").exists(),
        tick=run_ready_tasks,
        what="the webhook to fail",
    )
    [failed] = _log(shop, created["id"])
    assert failed["status"] == "FAILED" and failed["last_error"] == "HTTP 500"
    settings.WEBHOOK_RETRY_HOURS = 24

    replayed = shop.post(f"/api/v1/webhooks/{created['id']}/deliveries/{failed['id']}/replay")

    assert replayed.status_code == 202, replayed.content
    assert replayed.json() == {"delivery_id": failed["id"], "status": "PENDING"}
    wait_until(
        lambda: _delivery_status(failed["id"]) == "DELIVERED",
        tick=run_ready_tasks,
        what="the replayed delivery",
    )
    assert len(hook.requests) == 2
    (_, first), (headers, body) = hook.requests
    assert body == first and headers["Starship-Delivery"] == f"whd_{failed['id']}"
    assert _signed_with(created["secret"], headers, body)
    [entry] = _log(shop, created["id"])
    assert entry["status"] == "DELIVERED" and entry["attempts"] == 1  # counted since the replay
    assert WebhookAttempt.objects.filter(delivery_id=failed["id"]).count() == 2  # log kept
    audit = AuditEvent.objects.get(action="webhook.delivery_replay")
    assert audit.actor_credential_id == shop.credential.pk and audit.order_id == order_id
    again = shop.post(f"/api/v1/webhooks/{created['id']}/deliveries/{failed['id']}/replay")
    assert again.status_code == 202  # a DELIVERED one can be sent again too


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_a_test_event_arrives_signed_without_order_data(shop, receiver):
    hook = receiver()
    created = _register(shop, hook.url).json()

    queued = shop.post(f"/api/v1/webhooks/{created['id']}/test")

    assert queued.status_code == 202, queued.content
    delivery_id = queued.json()["delivery_id"]
    wait_until(
        lambda: _delivery_status(delivery_id) == "DELIVERED",
        tick=run_ready_tasks,
        what="the test event",
    )
    [(headers, body)] = hook.requests
    assert _signed_with(created["secret"], headers, body)
    event = json.loads(body)
    assert event["event"] == TEST_EVENT == headers["Starship-Event"]
    assert event["id"] == f"whd_{delivery_id}" and "order" not in event["data"]
    [entry] = _log(shop, created["id"])
    assert entry["event"] == TEST_EVENT and entry["order_id"] is None
    assert AuditEvent.objects.filter(action="webhook.test_send").count() == 1


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_after_rotating_the_next_delivery_is_signed_with_the_new_secret(shop, receiver):
    hook = receiver()
    created = _register(shop, hook.url).json()

    rotated = shop.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")

    assert rotated.status_code == 200, rotated.content
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    assert new_secret.encode() not in shop.get("/api/v1/webhooks").content
    delivery_id = shop.post(f"/api/v1/webhooks/{created['id']}/test").json()["delivery_id"]
    wait_until(
        lambda: _delivery_status(delivery_id) == "DELIVERED",
        tick=run_ready_tasks,
        what="the test event",
    )
    [(headers, body)] = hook.requests
    assert _signed_with(new_secret, headers, body)
    assert not _signed_with(created["secret"], headers, body)
    event = AuditEvent.objects.get(action="webhook.secret_rotate")
    assert event.actor_credential_id == shop.credential.pk
    assert new_secret not in json.dumps(event.data)


# --- SSRF --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "http://127.0.0.1:8000/hook",
        "https://10.1.2.3/hook",
        "https://192.168.1.10/hook",
        "https://172.16.0.1/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fc00::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:a9fe:a9fe]/hook",
        "https://localhost/hook",
    ],
)
@pytest.mark.django_db
def test_registering_a_private_destination_is_refused(shop, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    settings.DEBUG = True  # http:// allowed: what refuses it is the address

    response = _register(shop, url)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "destination_not_allowed"
    assert body["message"] == REFUSED_PRIVATE
    assert body["details"][0]["field"] == "url"


@pytest.mark.django_db
def test_a_public_https_destination_is_accepted_and_plain_http_is_not(shop, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    assert _register(shop, f"https://{PUBLIC_IP}/hook").status_code == 201
    plain = _register(shop, f"http://{PUBLIC_IP}/hook")
    assert plain.status_code == 400
    assert plain.json()["error"] == "validation_error" and "https://" in plain.json()["message"]


@pytest.mark.django_db
def test_a_host_that_does_not_resolve_is_refused_clearly(shop, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)

    response = _register(shop, "https://hooks.nowhere.example/x")

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert "does not resolve" in response.json()["message"]


def _resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    """DNS for the names in `answers`; every other name resolves as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_a_delivery_to_a_private_address_is_refused_recorded_and_not_retried(
    shop, receiver, settings
):
    hook = receiver()
    created = _register(shop, hook.url).json()  # allowed while registering (tests' default)
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    delivery_id = shop.post(f"/api/v1/webhooks/{created['id']}/test").json()["delivery_id"]
    wait_until(
        lambda: _delivery_status(delivery_id) == "FAILED",
        tick=run_ready_tasks,
        what="the refused delivery",
    )

    assert hook.requests == []  # no connection was made
    [attempt] = WebhookAttempt.objects.filter(delivery_id=delivery_id)
    assert attempt.error == REFUSED_PRIVATE and attempt.status_code is None
    [entry] = _log(shop, created["id"])
    assert entry["status"] == "FAILED" and entry["attempts"] == 1
    assert entry["last_error"] == REFUSED_PRIVATE and entry["next_attempt_at"] is None
    run_ready_tasks()
    assert WebhookAttempt.objects.filter(delivery_id=delivery_id).count() == 1


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_a_name_that_rebinds_to_a_private_address_is_refused_at_delivery(
    shop, receiver, settings, monkeypatch
):
    hook = receiver()
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    _resolving(monkeypatch, {"hooks.partner.example": PUBLIC_IP})
    port = hook.server.server_port
    created = _register(shop, f"https://hooks.partner.example:{port}/x")
    assert created.status_code == 201, created.content
    _resolving(monkeypatch, {"hooks.partner.example": "127.0.0.1"})  # the DNS answer changes

    delivery_id = shop.post(f"/api/v1/webhooks/{created.json()['id']}/test").json()["delivery_id"]
    wait_until(
        lambda: _delivery_status(delivery_id) == "FAILED",
        tick=run_ready_tasks,
        what="the refused delivery",
    )

    assert hook.requests == []
    assert WebhookAttempt.objects.get(delivery_id=delivery_id).error == REFUSED_PRIVATE


@pytest.mark.parametrize(
    ("address", "public"),
    [
        (PUBLIC_IP, True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("0.1.2.3", False),
        ("169.254.169.254", False),
        ("192.168.0.1", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::", False),
        ("::1", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("not an address", False),
    ],
)
def test_the_public_address_rule(address, public):
    assert is_public_address(address) is public


def _self_signed(tmp_path: Any, name: str) -> tuple[str, str]:
    """A certificate for `name` (its own CA) and its key, as PEM files."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_https_goes_to_the_checked_address_with_the_names_sni_and_certificate(
    shop, receiver, monkeypatch, tmp_path, settings
):
    import ssl

    cert_file, key_file = _self_signed(tmp_path, "hooks.partner.example")
    hook = receiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    hook.server.socket = context.wrap_socket(hook.server.socket, server_side=True)
    monkeypatch.setenv("SSL_CERT_FILE", cert_file)  # trust our test certificate
    _resolving(
        monkeypatch, {"hooks.partner.example": "127.0.0.1", "other.partner.example": "127.0.0.1"}
    )
    port = hook.server.server_port
    created = _register(shop, f"https://hooks.partner.example:{port}/x").json()

    delivery_id = shop.post(f"/api/v1/webhooks/{created['id']}/test").json()["delivery_id"]
    wait_until(
        lambda: _delivery_status(delivery_id) == "DELIVERED",
        tick=run_ready_tasks,
        what="the https test event",
    )

    [(headers, body)] = hook.requests
    assert headers["Host"] == f"hooks.partner.example:{port}"
    assert _signed_with(created["secret"], headers, body)
    # The same address under a name the certificate does not carry: refused by TLS.
    settings.WEBHOOK_RETRY_HOURS = 0
    other = _register(shop, f"https://other.partner.example:{port}/x").json()
    refused_id = shop.post(f"/api/v1/webhooks/{other['id']}/test").json()["delivery_id"]
    wait_until(
        lambda: _delivery_status(refused_id) == "FAILED",
        tick=run_ready_tasks,
        what="the mismatched certificate to fail",
    )
    assert len(hook.requests) == 1
    assert "certificate" in WebhookAttempt.objects.get(delivery_id=refused_id).error.lower()
