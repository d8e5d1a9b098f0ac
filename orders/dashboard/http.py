"""What every dashboard view shares: the htmx-aware request type, the choice
between a page and its partial, the acting user, and the few response helpers
more than one workspace uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib import messages
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails

from orders.errors import DomainError, NotFound


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def page_or_partial(request: HtmxHttpRequest, template: str, partial: str) -> str:
    """The partial `partial` of `template` for an htmx request, else the whole page."""
    # A history restore (back button after hx-push-url) needs the whole page.
    if request.htmx and not request.htmx.history_restore_request:
        return f"{template}#{partial}"
    return template


@contextmanager
def not_found_as_404(message: str) -> Iterator[None]:
    """A selector's or service's NotFound becomes the dashboard's 404 page."""
    try:
        yield
    except NotFound:
        raise Http404(message) from None


def no_store(response: HttpResponse) -> HttpResponse:
    """Keep a response out of every cache (a revealed voucher, a CSV of orders)."""
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0, private"
    response["Pragma"] = "no-cache"
    return response


def query_without(query: Any, *names: str) -> str:
    """`query` (a QueryDict) encoded again without the parameters `names`."""
    copy = query.copy()
    for name in names:
        copy.pop(name, None)
    return str(copy.urlencode())


def flash_form_errors(request: HttpRequest, form: Form, *, prefix: str = "") -> None:
    """Every error of an invalid form as an error message, for a page that redirects."""
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, f"{prefix}{error}")


def form_refusal(form: Form, refusal: DomainError) -> None:
    """A service's refusal as an error of the form: on the field it names when the
    form has that field, else on the whole form."""
    field = getattr(refusal, "field", None)
    form.add_error(field if field in form.fields else None, refusal.message)


def flash_outcome(request: HttpRequest, label: str, *, error: str, done: str) -> None:
    """One message after an action, for a page that redirects: "<label>: <refusal>"
    when the action was refused, else "<label>: <what was done>"."""
    if error:
        messages.error(request, f"{label}: {error}")
    else:
        messages.success(request, f"{label}: {done}")
