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
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from orders import rules
from orders.errors import DecryptionFailed, GiftLinkGone, NotFound, VoucherNotRevealable
from orders.services.actors import Actor
from orders.services.gift_links import GiftPage, gift_link_open, gift_link_reveal

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
        # A HEAD (a link preview) never reveals; a claimed link shows its code again.
        if request.method == "POST" or (page.claimed and request.method == "GET"):
            page = gift_link_reveal(token=token, actor=Actor.for_link_recipient(request))
    except NotFound:
        return _unavailable(request, status=404)
    except (GiftLinkGone, VoucherNotRevealable):
        return _unavailable(request, status=410)
    except DecryptionFailed as exc:
        # The message names the field and key id only; never the token or a code.
        logger.error("Gift link page: voucher decryption failed: %s", exc.message)
        return _unavailable(request, status=500)
    return _page(request, page)
