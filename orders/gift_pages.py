"""The gift link page: what the recipient of a LINK order's unit opens on their phone.

Server-rendered and usable without JavaScript (the copy buttons are an
enhancement): GET shows the gift (brand, product, value, expiry) and one
"Reveal my code" button; its POST (CSRF-protected) claims the unit and shows
the code. A link already claimed shows the code again on every visit, each
one audited. An unknown token answers 404, a revoked or expired link 410,
both the same page that says nothing about the gift. Every answer is
`no-store`, `no-referrer` and `noindex`, and none is logged with its path
(the token is in it): the request line redacts it (orders/logs.py) and
Django's own 4xx line is skipped.

A PROTECTED link first asks for a one-time code: the page names the masked
customer address and offers "Send me a code" (a POST, so a link preview never
sends mail); the code is entered in a numeric one-time-code field. Once
verified, the link stays open in this browser's session for VERIFIED_FOR;
a locked link answers 423 with a page that says only to contact the sender.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils import timezone
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from orders import rules
from orders.enums import LinkType
from orders.errors import (
    DecryptionFailed,
    GiftLinkCodeRefused,
    GiftLinkGone,
    GiftLinkLocked,
    NotFound,
    VoucherNotRevealable,
)
from orders.models import GiftLink
from orders.services.actors import Actor
from orders.services.gift_links import (
    CODE_TTL,
    VERIFIED_FOR,
    GiftPage,
    gift_link_code_send,
    gift_link_code_verify,
    gift_link_open,
    gift_link_reveal,
    mask_email,
)

logger = logging.getLogger("orders.gift")


class _NullOriginCsrf(CsrfViewMiddleware):
    """Django's CSRF check, taking the `Origin: null` a browser sends with a form
    posted from a `Referrer-Policy: no-referrer` page (this one: its URL holds the
    token, which no other site may see). Only the origin check is relaxed; the
    token check (cookie and form field) still refuses a forged POST, which cannot
    read our cookie."""

    def _origin_verified(self, request: HttpRequest) -> bool:
        if request.META.get("HTTP_ORIGIN") == "null":
            return True
        return bool(super()._origin_verified(request))  # type: ignore[misc]


csrf_protect_null_origin = decorator_from_middleware(_NullOriginCsrf)


def _private(response: HttpResponse) -> HttpResponse:
    """Never cached, never sent on as a Referer, never indexed, never logged by Django."""
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    # Django logs a 4xx or 5xx answer with its path, which holds the token.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _unavailable(request: HttpRequest, *, status: int) -> HttpResponse:
    return _private(render(request, "gift/unavailable.html", status=status))


def _locked(request: HttpRequest) -> HttpResponse:
    return _private(render(request, "gift/locked.html", status=423))


def _session_key(link: GiftLink) -> str:
    return f"gift-link-verified:{link.pk}"


def _verified(request: HttpRequest, link: GiftLink) -> bool:
    until = request.session.get(_session_key(link))
    return isinstance(until, int) and until > time.time()


def _remember(request: HttpRequest, link: GiftLink) -> None:
    seconds = int(VERIFIED_FOR.total_seconds())
    request.session[_session_key(link)] = int(time.time()) + seconds
    if not request.user.is_authenticated:  # a recipient's own session: as long as that
        request.session.set_expiry(seconds)


def _code_page(
    request: HttpRequest,
    page: GiftPage,
    *,
    error: str = "",
    code_live: bool | None = None,
    status: int = 200,
) -> HttpResponse:
    link, order = page.link, page.order
    if code_live is None:
        sent = link.code_sent_at
        code_live = bool(link.code_hash) and sent is not None and not _older(sent)
    context = {
        "order": order,
        "link": link,
        "value": rules.money_text(order.denomination),
        "masked": mask_email(order.customer_email),
        "code_live": code_live,
        "error": error,
    }
    return _private(render(request, "gift/code.html", context, status=status))


def _older(sent: datetime) -> bool:
    return timezone.now() - sent >= CODE_TTL


def _protected(request: HttpRequest, page: GiftPage, token: str) -> HttpResponse | None:
    """The code step of a PROTECTED link not verified in this session (a response),
    or None once verified (the page goes on as a PUBLIC one)."""
    actor = Actor.for_link_recipient(request)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "send":
        try:
            gift_link_code_send(token=token, actor=actor)
        except GiftLinkCodeRefused as refused:
            page = gift_link_open(token=token)  # as it is now (a send put back)
            status = 429 if refused.retry_after else 503
            return _code_page(request, page, error=refused.message, status=status)
        return _code_page(request, gift_link_open(token=token), code_live=True)
    if action == "verify":
        try:
            gift_link_code_verify(token=token, code=request.POST.get("code", ""), actor=actor)
        except GiftLinkCodeRefused as refused:
            return _code_page(
                request, gift_link_open(token=token), error=refused.message, status=400
            )
        _remember(request, page.link)
        return None
    if request.method == "POST":  # a reveal before the code
        return _code_page(request, page, error="Enter the code we e-mailed you first.", status=403)
    return _code_page(request, page)


def _page(request: HttpRequest, page: GiftPage) -> HttpResponse:
    order = page.order
    context = {
        "order": order,
        "link": page.link,
        "revealed": page.revealed,
        "value": rules.money_text(order.denomination),
    }
    return _private(render(request, "gift/claim.html", context))


@csrf_exempt  # from the project's CSRF middleware: checked by the decorator below
@csrf_protect_null_origin
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def gift_link_page(request: HttpRequest, token: str) -> HttpResponse:
    """A gift link's page: the gift, then (POST, or any visit once claimed) its code."""
    token = token.rstrip("/")
    try:
        page = gift_link_open(token=token)
        if page.link.locked:
            return _locked(request)
        protected = page.link.link_type == LinkType.PROTECTED
        verified = protected and _verified(request, page.link)
        if protected and not verified:
            answer = _protected(request, page, token)
            if answer is not None:
                return answer
            verified = True  # just now: show the page as verified (the reveal is a POST)
            if not page.claimed:
                return _page(request, page)
        # A HEAD (a link preview) never reveals; a claimed link shows its code again.
        # The code step's own POSTs (send, verify) of an already verified link reveal nothing.
        action = request.POST.get("action", "") if request.method == "POST" else ""
        revealing = request.method == "POST" and action not in ("send", "verify")
        if revealing or (page.claimed and request.method in ("GET", "POST")):
            page = gift_link_reveal(
                token=token, actor=Actor.for_link_recipient(request), code_verified=verified
            )
    except GiftLinkLocked:
        return _locked(request)
    except GiftLinkCodeRefused as refused:  # a reveal raced a lock's reset: ask again
        return _code_page(request, gift_link_open(token=token), error=refused.message)
    except NotFound:
        return _unavailable(request, status=404)
    except (GiftLinkGone, VoucherNotRevealable):
        return _unavailable(request, status=410)
    except DecryptionFailed as exc:
        # The message names the field and key id only; never the token or a code.
        logger.error("Gift link page: voucher decryption failed: %s", exc.message)
        return _unavailable(request, status=500)
    return _page(request, page)
