"""The clients workspace: onboard a partner and run its API access from the dashboard.

A client's page shows its wallets, its credentials (issue one, set its scopes,
allowlist and rate-limit plan, rotate or revoke it), its webhook endpoints (each
with its delivery log and replay) and its recent API errors. Every change is one
service call of `orders/services/clients.py` or `webhooks.py`, which audits it;
each is its own POST view. Those that give or widen access (issue a credential,
set its scopes, allowlist or plan, rotate it, register a webhook endpoint or
rotate its secret) need a recent second factor (`@step_up`); revoking and
deactivating do not, so cutting access off is never slowed down.

A new secret (an API secret, a webhook signing secret) is shown once, in the
answer to the POST that made it: never redirected to, never in a URL, a message
or the session, and that answer is no-store (`no_store`). A reload of the page
shows no secret; a lost one is replaced by rotating. A refusal of a service
(a bad CIDR, an unknown scope, a private webhook URL) is shown on the form it
came from, with a 400, and nothing is changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from orders.api.ratelimit import plan_limits
from orders.dashboard.http import (
    HtmxHttpRequest,
    form_refusal,
    no_store,
    not_found_as_404,
    page_or_partial,
)
from orders.dashboard.permissions import permission_for
from orders.dashboard.stepup import step_up
from orders.db_router import reads_from_replica
from orders.enums import ALL_API_SCOPES, ApiScope, WebhookDeliveryStatus, WebhookEvent
from orders.errors import DomainError, ValidationFailed
from orders.models import ApiCredential, Client
from orders.selectors import clients as client_selectors
from orders.selectors import webhooks as webhook_selectors
from orders.selectors.finance import wallets_of_client
from orders.services import clients as client_services
from orders.services import webhooks as webhook_services
from orders.services.actors import Actor

LIST = "dashboard/clients/list.html"
DETAIL = "dashboard/clients/detail.html"
WEBHOOK = "dashboard/clients/webhook.html"
DELIVERY_PAGE_SIZE = 25
MAX_OVERLAP_SECONDS = 30 * 86400
REPLAYABLE = (WebhookDeliveryStatus.DELIVERED, WebhookDeliveryStatus.FAILED)

# --- Forms ------------------------------------------------------------------------
# They parse; the services check (one place for each rule) and their refusals
# land on the field they name (`form_refusal`).


class ClientSearchForm(forms.Form):
    q = forms.CharField(label="Name", required=False, max_length=200)


class ClientCreateForm(forms.Form):
    """A new client and its first wallet; credentials are issued on its page."""

    name = forms.CharField(label="Name", max_length=200, strip=True)
    currency = forms.CharField(label="Wallet currency", max_length=3, strip=True)
    contact_email = forms.EmailField(label="Contact e-mail", required=False)


class WalletOpenForm(forms.Form):
    currency = forms.CharField(label="Currency", max_length=3, strip=True)


class NetworksField(forms.CharField):
    """IPs or CIDRs separated by commas, spaces or new lines; the service checks each."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [part for part in re.split(r"[\s,]+", text) if part]


class CredentialAccessForm(forms.Form):
    """What a credential may do and where from."""

    scopes = forms.MultipleChoiceField(
        label="Scopes",
        required=False,  # none ticked: the service says a credential needs one
        choices=ApiScope.choices,
        error_messages={
            "invalid_choice": f"Unknown scope %(value)s; valid: {', '.join(ALL_API_SCOPES)}."
        },
    )
    allowed_ips = NetworksField(label="Allowed IPs or CIDRs", required=False, max_length=4000)


class CredentialIssueForm(CredentialAccessForm):
    label = forms.CharField(label="Label", required=False, max_length=100, strip=True)
    mode = forms.ChoiceField(label="Mode", choices=ApiCredential.Mode.choices)


class RateLimitForm(forms.Form):
    rate_limit_per_minute = forms.IntegerField(label="Requests per minute", required=False)


class RotateForm(forms.Form):
    overlap_seconds = forms.IntegerField(
        label="Old secret keeps working for (seconds)",
        required=False,
        min_value=0,
        max_value=MAX_OVERLAP_SECONDS,
    )


class WebhookCreateForm(forms.Form):
    url = forms.CharField(label="URL", max_length=500, strip=True)
    events = forms.MultipleChoiceField(label="Events", required=False, choices=WebhookEvent.choices)


class ConfirmForm(forms.Form):
    """An action with nothing to fill in (revoke, deactivate, test, replay)."""


# --- What the pages show ------------------------------------------------------------


@dataclass(frozen=True)
class OneTimeSecret:
    """A secret just made, for the one answer that shows it."""

    title: str
    key: str
    secret: str
    note: str


MULTIPLE_VALUES = ("scopes", "events")


@dataclass(frozen=True)
class Refusal:
    """A change the form or the service refused: which form, on which row, with
    the errors and the values the user typed (shown again)."""

    action: str
    form: forms.Form
    target: int | None = None

    @property
    def errors(self) -> list[str]:
        return [str(error) for errors in self.form.errors.values() for error in errors]

    @property
    def values(self) -> dict[str, Any]:
        """What was typed, by field name (a list for a multiple choice)."""
        data: Any = self.form.data  # the POST's QueryDict
        return {
            name: data.getlist(name) if name in MULTIPLE_VALUES else data.get(name, "")
            for name in self.form.fields
        }

    def of(self, action: str, target: int | None = None) -> dict[str, Any] | None:
        """The typed values when this is the refusal of `action` (on `target`)."""
        if self.action != action or self.target != target:
            return None
        return self.values


@dataclass(frozen=True)
class CredentialRow:
    """A credential with its effective limits, and the values its forms show."""

    credential: ApiCredential
    per_minute: int
    per_10_seconds: int
    scopes_checked: list[str]
    networks_text: str
    plan_text: str
    failed: str = ""  # the action of this row's refused form, open again


@dataclass(frozen=True)
class Outcome:
    """What a change did: the message to show and, at most once, a new secret."""

    done: str
    secret: OneTimeSecret | None = None


def _credential_rows(
    credentials: list[ApiCredential], refusal: Refusal | None
) -> list[CredentialRow]:
    rows = []
    for credential in credentials:
        per_minute, per_10_seconds = plan_limits(credential.rate_limit_per_minute)
        plan = credential.rate_limit_per_minute
        scopes = list(credential.scopes or [])
        networks = "\n".join(credential.allowed_networks or [])
        failed = ""
        if refusal is not None and refusal.target == credential.pk:
            failed = refusal.action
            typed = refusal.values
            if failed == "access":
                scopes, networks = typed["scopes"], typed["allowed_ips"]
            elif failed == "rate-limit":
                plan = typed["rate_limit_per_minute"]
        rows.append(
            CredentialRow(
                credential=credential,
                per_minute=per_minute,
                per_10_seconds=per_10_seconds,
                scopes_checked=scopes,
                networks_text=networks,
                plan_text="" if plan is None else str(plan),
                failed=failed,
            )
        )
    return rows


def _detail_context(client_id: int, *, refusal: Refusal | None = None) -> dict[str, Any]:
    with not_found_as_404("No such client."):
        client = client_selectors.client_get(client_id=client_id)
    credentials = client_selectors.credential_list(client_id=client.pk)
    typed = refusal.of("issue") if refusal is not None else None
    return {
        "client": client,
        "wallets": wallets_of_client(client_id=client.pk),
        "credentials": _credential_rows(credentials, refusal),
        "endpoints": webhook_selectors.webhook_endpoint_list(client_id=client.pk),
        "api_errors": client_selectors.api_error_list(client_id=client.pk),
        "recent_errors_limit": client_selectors.RECENT_API_ERRORS,
        "scope_choices": ApiScope.choices,
        "event_choices": WebhookEvent.choices,
        "mode_choices": ApiCredential.Mode.choices,
        # The new-credential form: all scopes ticked, or what was typed when refused.
        "issue_values": typed or {"scopes": list(ALL_API_SCOPES), "mode": "live"},
        "default_per_minute": settings.API_RATE_LIMIT_PER_MINUTE,
        "default_overlap": settings.API_SECRET_ROTATION_OVERLAP_SECONDS,
        "refusal": refusal,
    }


def _page(
    request: HtmxHttpRequest, template: str, partial: str, context: dict[str, Any], status: int
) -> HttpResponse:
    """The page, or for htmx its partial, which then shows the messages itself
    (the page shows them in base.html)."""
    chosen = page_or_partial(request, template, partial)
    context["show_messages"] = chosen != template
    return render(request, chosen, context, status=status)


def _client_page(
    request: HtmxHttpRequest,
    client_id: int,
    *,
    refusal: Refusal | None = None,
    secret: OneTimeSecret | None = None,
) -> HttpResponse:
    context = _detail_context(client_id, refusal=refusal)
    context["secret"] = secret
    response = _page(request, DETAIL, "client-body", context, 400 if refusal else 200)
    return no_store(response) if secret is not None else response


def _client_change(
    request: HtmxHttpRequest,
    client_id: int,
    *,
    action: str,
    form: forms.Form,
    change: Callable[[forms.Form, Actor], Outcome],
    target: int | None = None,
) -> HttpResponse:
    """Run one change of a client's page from its form: refused, the page again with
    the form's errors (400); done, a redirect to the page (htmx: its body with the
    message), or, when the change made a secret, the page carrying it this once."""
    outcome = None
    if form.is_valid():
        try:
            with not_found_as_404("No such client, credential or endpoint."):
                outcome = change(form, Actor.for_request(request))
        except DomainError as refusal:
            form_refusal(form, refusal)
    if outcome is None:
        return _client_page(request, client_id, refusal=Refusal(action, form, target))
    messages.success(request, outcome.done)
    if outcome.secret is None and not request.htmx:
        return redirect("dashboard:client_detail", client_id=client_id)
    return _client_page(request, client_id, secret=outcome.secret)


def _credential_of(client_id: int, credential_id: int) -> ApiCredential:
    with not_found_as_404("No such credential."):
        return client_selectors.credential_get(client_id=client_id, credential_id=credential_id)


def _credential_change(
    request: HtmxHttpRequest,
    ids: tuple[int, int],
    action: str,
    form_class: type[forms.Form],
    change: Callable[[ApiCredential, forms.Form, Actor], Outcome],
) -> HttpResponse:
    """A change of one of the client's credentials, `ids` (client, credential), from
    its form (another client's credential is a 404)."""
    client_id, credential_id = ids
    credential = _credential_of(client_id, credential_id)
    return _client_change(
        request,
        client_id,
        action=action,
        form=form_class(request.POST),
        change=lambda form, actor: change(credential, form, actor),
        target=credential.pk,
    )


def _client_of(client_id: int) -> Client:
    with not_found_as_404("No such client."):
        return client_selectors.client_get(client_id=client_id)


def _api_secret(issued: client_services.IssuedCredential, *, note: str) -> OneTimeSecret:
    return OneTimeSecret(
        title=f"API secret of {issued.credential.public_key}",
        key=issued.credential.public_key,
        secret=issued.secret,
        note=note,
    )


def _networks_text(networks: list[str]) -> str:
    return ", ".join(networks) or "any address"


# --- Clients ------------------------------------------------------------------------


def _list_context(request: HtmxHttpRequest, create_form: ClientCreateForm) -> dict[str, Any]:
    search = ClientSearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    return {
        "search": search,
        "clients": client_selectors.client_list(search=query),
        "create_form": create_form,
    }


@require_GET
@permission_for("client_list")
@reads_from_replica()
def client_list(request: HtmxHttpRequest) -> HttpResponse:
    context = _list_context(request, ClientCreateForm())
    return _page(request, LIST, "client-results", context, 200)


@require_POST
@permission_for("client_create")
def client_create_view(request: HtmxHttpRequest) -> HttpResponse:
    """A new client with an empty wallet, then its page (to issue a credential)."""
    form = ClientCreateForm(request.POST)
    client = None
    if form.is_valid():
        try:
            client, _wallet = client_services.client_open(
                name=form.cleaned_data["name"],
                currency=form.cleaned_data["currency"],
                contact_email=form.cleaned_data["contact_email"],
                actor=Actor.for_request(request),
            )
        except DomainError as refusal:
            form_refusal(form, refusal)
        except IntegrityError:  # lost a race with someone creating the same name
            form.add_error("name", "A client with this name already exists.")
    if client is None:
        return _page(request, LIST, "client-create", _list_context(request, form), 400)
    messages.success(
        request, f"Client {client.name} created with an empty wallet; issue it a credential."
    )
    url = reverse("dashboard:client_detail", kwargs={"client_id": client.pk})
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


@require_GET
@permission_for("client_detail")
def client_detail(request: HtmxHttpRequest, client_id: int) -> HttpResponse:
    return _client_page(request, client_id)


@require_POST
@permission_for("client_wallet_open")
def client_wallet_open(request: HtmxHttpRequest, client_id: int) -> HttpResponse:
    def change(form: forms.Form, actor: Actor) -> Outcome:
        wallet = client_services.client_wallet_add(
            client_id=client_id, currency=form.cleaned_data["currency"], actor=actor
        )
        return Outcome(f"Opened an empty {wallet.currency} wallet.")

    return _client_change(
        request, client_id, action="wallet", form=WalletOpenForm(request.POST), change=change
    )


# --- Credentials --------------------------------------------------------------------


@require_POST
@permission_for("client_credential_issue")
@step_up
def client_credential_issue(request: HtmxHttpRequest, client_id: int) -> HttpResponse:
    client = _client_of(client_id)

    def change(form: forms.Form, actor: Actor) -> Outcome:
        data = form.cleaned_data
        issued = client_services.credential_issue(
            client=client,
            actor=actor,
            mode=data["mode"],
            label=data["label"],
            scopes=data["scopes"],
            allowed_networks=data["allowed_ips"],
        )
        return Outcome(
            f"Credential {issued.credential.public_key} issued.",
            secret=_api_secret(issued, note="Send it to the partner with the key."),
        )

    form = CredentialIssueForm(request.POST)
    return _client_change(request, client_id, action="issue", form=form, change=change)


@require_POST
@permission_for("client_credential_access")
@step_up
def client_credential_access(
    request: HtmxHttpRequest, client_id: int, credential_id: int
) -> HttpResponse:
    def change(credential: ApiCredential, form: forms.Form, actor: Actor) -> Outcome:
        saved = client_services.credential_access_set(
            credential_id=credential.pk,
            actor=actor,
            scopes=form.cleaned_data["scopes"],
            allowed_networks=form.cleaned_data["allowed_ips"],
        )
        return Outcome(
            f"{saved.public_key}: scopes {' '.join(saved.scopes)}; "
            f"allowed from {_networks_text(saved.allowed_networks)}."
        )

    ids = (client_id, credential_id)
    return _credential_change(request, ids, "access", CredentialAccessForm, change)


@require_POST
@permission_for("client_credential_rate_limit")
@step_up
def client_credential_rate_limit(
    request: HtmxHttpRequest, client_id: int, credential_id: int
) -> HttpResponse:
    def change(credential: ApiCredential, form: forms.Form, actor: Actor) -> Outcome:
        saved = client_services.credential_rate_limit_set(
            credential_id=credential.pk,
            actor=actor,
            per_minute=form.cleaned_data["rate_limit_per_minute"],
        )
        per_minute, per_10_seconds = plan_limits(saved.rate_limit_per_minute)
        plan = "its own plan" if saved.rate_limit_per_minute is not None else "the default plan"
        return Outcome(
            f"{saved.public_key}: {plan}, {per_minute} requests a minute "
            f"({per_10_seconds} per 10 seconds)."
        )

    ids = (client_id, credential_id)
    return _credential_change(request, ids, "rate-limit", RateLimitForm, change)


@require_POST
@permission_for("client_credential_rotate")
@step_up
def client_credential_rotate(
    request: HtmxHttpRequest, client_id: int, credential_id: int
) -> HttpResponse:
    def change(credential: ApiCredential, form: forms.Form, actor: Actor) -> Outcome:
        issued = client_services.credential_rotate(
            credential_id=credential.pk,
            actor=actor,
            overlap_seconds=form.cleaned_data["overlap_seconds"],
        )
        until = issued.credential.previous_secret_valid_until
        note = (
            f"The old secret works until {until:%Y-%m-%d %H:%M} UTC, then only this one."
            if until
            else "The old secret has stopped working."
        )
        return Outcome(
            f"{issued.credential.public_key}: secret rotated.",
            secret=_api_secret(issued, note=note),
        )

    ids = (client_id, credential_id)
    return _credential_change(request, ids, "rotate", RotateForm, change)


@require_POST
@permission_for("client_credential_revoke")
def client_credential_revoke(
    request: HtmxHttpRequest, client_id: int, credential_id: int
) -> HttpResponse:
    def change(credential: ApiCredential, form: forms.Form, actor: Actor) -> Outcome:
        revoked = client_services.credential_revoke(credential_id=credential.pk, actor=actor)
        return Outcome(f"{revoked.public_key} revoked: it answers 401 from now on.")

    ids = (client_id, credential_id)
    return _credential_change(request, ids, "revoke", ConfirmForm, change)


# --- Webhook endpoints --------------------------------------------------------------


def _signing_secret(*, url: str, secret: str, note: str) -> OneTimeSecret:
    return OneTimeSecret(title=f"Signing secret of {url}", key=url, secret=secret, note=note)


@require_POST
@permission_for("client_webhook_create")
@step_up
def client_webhook_create(request: HtmxHttpRequest, client_id: int) -> HttpResponse:
    client = _client_of(client_id)

    def change(form: forms.Form, actor: Actor) -> Outcome:
        endpoint, secret = webhook_services.webhook_endpoint_create(
            client=client,
            url=form.cleaned_data["url"],
            events=form.cleaned_data["events"],
            actor=actor,
        )
        return Outcome(
            f"Webhook endpoint {endpoint.url} registered.",
            secret=_signing_secret(
                url=endpoint.url,
                secret=secret,
                note="The partner checks each delivery's Starship-Signature with it.",
            ),
        )

    form = WebhookCreateForm(request.POST)
    return _client_change(request, client_id, action="webhook", form=form, change=change)


def _endpoint_change(
    request: HtmxHttpRequest,
    client_id: int,
    endpoint_id: int,
    *,
    action: str,
    change: Callable[[Actor], Outcome],
) -> HttpResponse:
    """An action on one endpoint of the client's page (its services check that the
    endpoint is this client's: another's is a 404)."""
    with not_found_as_404("No such webhook endpoint."):
        webhook_selectors.webhook_endpoint_get(client_id=client_id, endpoint_id=endpoint_id)
    return _client_change(
        request,
        client_id,
        action=action,
        form=ConfirmForm(request.POST),
        change=lambda _form, actor: change(actor),
        target=endpoint_id,
    )


@require_POST
@permission_for("client_webhook_deactivate")
def client_webhook_deactivate(
    request: HtmxHttpRequest, client_id: int, endpoint_id: int
) -> HttpResponse:
    def change(actor: Actor) -> Outcome:
        webhook_services.webhook_endpoint_deactivate(
            client_id=client_id, endpoint_id=endpoint_id, actor=actor
        )
        return Outcome("Webhook endpoint deactivated: nothing more is sent to it.")

    return _endpoint_change(request, client_id, endpoint_id, action="deactivate", change=change)


@require_POST
@permission_for("client_webhook_rotate")
@step_up
def client_webhook_rotate(
    request: HtmxHttpRequest, client_id: int, endpoint_id: int
) -> HttpResponse:
    def change(actor: Actor) -> Outcome:
        secret = webhook_services.webhook_secret_rotate(
            client_id=client_id, endpoint_id=endpoint_id, actor=actor
        )
        endpoint = webhook_selectors.webhook_endpoint_get(
            client_id=client_id, endpoint_id=endpoint_id
        )
        return Outcome(
            f"Signing secret of {endpoint.url} rotated.",
            secret=_signing_secret(
                url=endpoint.url,
                secret=secret,
                note="The old secret stopped signing at once: deliveries from now on use this.",
            ),
        )

    return _endpoint_change(request, client_id, endpoint_id, action="webhook-rotate", change=change)


@require_POST
@permission_for("client_webhook_test")
def client_webhook_test(request: HtmxHttpRequest, client_id: int, endpoint_id: int) -> HttpResponse:
    def change(actor: Actor) -> Outcome:
        webhook_services.webhook_test_send(
            client_id=client_id, endpoint_id=endpoint_id, actor=actor
        )
        return Outcome("Test event queued; its delivery shows in the endpoint's delivery log.")

    return _endpoint_change(request, client_id, endpoint_id, action="webhook-test", change=change)


def _webhook_context(
    request: HtmxHttpRequest, client_id: int, endpoint_id: int
) -> tuple[dict[str, Any], int]:
    client = _client_of(client_id)
    with not_found_as_404("No such webhook endpoint."):
        endpoint = webhook_selectors.webhook_endpoint_get(
            client_id=client.pk, endpoint_id=endpoint_id
        )
    cursor = request.GET.get("cursor") or None
    page, status = None, 200
    try:
        page = webhook_selectors.webhook_delivery_list(
            client_id=client.pk, endpoint_id=endpoint.pk, cursor=cursor, limit=DELIVERY_PAGE_SIZE
        )
    except ValidationFailed as error:  # a cursor that is not one
        messages.error(request, error.message)
        status = 400
    context = {
        "client": client,
        "endpoint": endpoint,
        "page": page,
        "replayable": [str(s) for s in REPLAYABLE],
    }
    return context, status


@require_GET
@permission_for("client_webhook_detail")
def client_webhook_detail(
    request: HtmxHttpRequest, client_id: int, endpoint_id: int
) -> HttpResponse:
    """An endpoint's delivery log, newest first, with the last error of each."""
    context, status = _webhook_context(request, client_id, endpoint_id)
    return _page(request, WEBHOOK, "delivery-results", context, status)


@require_POST
@permission_for("client_webhook_replay")
def client_webhook_replay(
    request: HtmxHttpRequest, client_id: int, endpoint_id: int, delivery_id: int
) -> HttpResponse:
    """Send a delivered or failed event again; back to the endpoint's delivery log."""
    error = ""
    try:
        with not_found_as_404("No such delivery."):
            webhook_services.webhook_delivery_replay(
                client_id=client_id,
                endpoint_id=endpoint_id,
                delivery_id=delivery_id,
                actor=Actor.for_request(request),
            )
    except DomainError as refusal:
        error = refusal.message
    if error:
        messages.error(request, f"Delivery {delivery_id}: {error}")
    else:
        messages.success(request, f"Delivery {delivery_id} queued again.")
    if not request.htmx:
        return redirect(
            "dashboard:client_webhook_detail", client_id=client_id, endpoint_id=endpoint_id
        )
    context, _status = _webhook_context(request, client_id, endpoint_id)
    return _page(request, WEBHOOK, "delivery-results", context, 409 if error else 200)
