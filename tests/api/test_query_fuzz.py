"""Property tests: whatever a client puts in the query string or a cursor, the
answer is JSON, never a 5xx, and every error has the documented shape."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orders.selectors.paging import CURSOR_PATTERN
from tests.helpers.api import order_body

pytestmark = pytest.mark.django_db

# Bounded and reproducible in CI: a fixed example budget, no example database
# written into the work tree, the same examples on every run.
fuzz = hypothesis_settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")

# Text a URL can carry: any code point but lone surrogates (not encodable).
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
# Offsets RFC 3339 allows (up to 23:59, beyond PostgreSQL's 15:59) and some it does not.
offsets = st.one_of(
    st.builds(
        lambda sign, hours, minutes: f"{sign}{hours:02d}:{minutes:02d}",
        st.sampled_from(["+", "-"]),
        st.integers(0, 23),
        st.integers(0, 59),
    ),
    st.sampled_from(["Z", "z", "", " 05:00", "+2359", "-23:59", "+23:59", "+24:00", "-99:99"]),
)
# The calendar's first and last instants are where an offset tips a time out of it.
calendar_edges = st.builds(
    lambda moment, offset: f"{moment}{offset}",
    st.sampled_from(
        [
            "0001-01-01T00:00:00",
            "0001-01-01T23:59:59",
            "9999-12-31T00:00:00",
            "9999-12-31T23:59:59.999999",
        ]
    ),
    offsets,
)
timestamps = st.one_of(
    calendar_edges,
    st.builds(
        lambda year, rest, offset: f"{year:04d}{rest}{offset}",
        st.integers(0, 9999),
        st.sampled_from(
            ["-06-15T12:00:00", "-12-31T23:59:59.999999999", "-02-29T12:00:00", "-13-40T25:61:61"]
        ),
        offsets,
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    any_text,
)
amounts = st.one_of(
    st.builds(
        lambda digits, exponent: f"{digits}e{exponent}",
        st.integers(0, 10**6),
        st.integers(-500, 500),
    ),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["1e400", "NaN", "-0", "Infinity", "25.00", "10", "0x19", "25,00", "٢٥"]),
    st.floats().map(repr),
    st.integers().map(str),
    st.from_regex(r"-?\d{0,30}(\.\d{0,5})?", fullmatch=True),
    any_text,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children),
    max_leaves=8,
)
# Positions shaped like the API's own cursors (time, id, direction), with the
# extremes of each part.
position_ids = st.one_of(
    st.sampled_from([0, 1, 2**63 - 1, 2**63, -1, True]), st.integers(-(2**70), 2**70)
)
positions = st.tuples(timestamps, position_ids, st.sampled_from(["next", "prev"])).map(list)


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


cursors = st.one_of(
    positions.map(encode_cursor),
    st.tuples(json_values, json_values, json_values).map(lambda t: encode_cursor(list(t))),
    json_values.map(encode_cursor),
    st.binary(max_size=120).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    any_text,
)


def get(user: Any, path: str, query: str) -> Any:
    """GET with the query string exactly as given (already encoded)."""
    return user.http.get(path, QUERY_STRING=query, headers=user.headers)


def assert_json_answer(response: Any) -> None:
    """Never a 5xx; always JSON; an error always {"error": snake_case, "message": text}."""
    assert response.status_code < 500, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body["error"], str) and SNAKE_CASE.match(body["error"]), body
        assert isinstance(body["message"], str) and body["message"], body
        if body["error"] == "validation_error":
            assert body["details"] and all(d["field"] and d["message"] for d in body["details"])
    else:
        assert isinstance(body, dict)


@pytest.fixture
def orders_placed(shop, product):
    """A few orders and ledger entries, so a cursor position meets real rows."""
    for n in range(3):
        placed = shop.post("/api/v1/orders", order_body(product, reference_code=f"F-{n}"))
        assert placed.status_code == 201
    return shop


@fuzz
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "cursor": cursors,
            "limit": st.one_of(st.integers(-(2**70), 2**70).map(str), any_text),
            "status": st.lists(any_text, max_size=3),
            "sub_status": st.lists(any_text, max_size=3),
            "product_id": st.one_of(st.integers(-(2**70), 2**70).map(str), any_text),
            "reference_code": any_text,
            "placed_after": timestamps,
            "placed_before": timestamps,
        },
    )
)
def test_order_list_query_never_breaks(orders_placed, params):
    assert_json_answer(get(orders_placed, "/api/v1/orders", urlencode(params, doseq=True)))


@fuzz
@given(
    path=st.sampled_from(["/api/v1/orders", "/api/v1/wallet/transactions"]),
    cursor=st.from_regex(CURSOR_PATTERN, fullmatch=True) | positions.map(encode_cursor),
    limit=st.integers(1, 100),
)
def test_cursor_positions_never_break(orders_placed, path, cursor, limit):
    assert_json_answer(orders_placed.get(path, {"cursor": cursor, "limit": limit}))


@fuzz
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "cursor": cursors,
            "limit": st.one_of(st.integers(-(2**70), 2**70).map(str), any_text),
            "currency": any_text,
        },
    )
)
def test_wallet_transactions_query_never_breaks(orders_placed, params):
    assert_json_answer(get(orders_placed, "/api/v1/wallet/transactions", urlencode(params)))


@fuzz
@given(
    denomination=amounts,
    quantity=st.one_of(st.integers(-(2**70), 2**70).map(str), any_text),
    product_id=st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(["x", "-1", "0"])),
)
def test_availability_query_never_breaks(shop, product, denomination, quantity, product_id):
    params = urlencode({"denomination": denomination, "quantity": quantity})
    assert_json_answer(get(shop, f"/api/v1/products/{product.pk}/availability", params))
    assert_json_answer(get(shop, f"/api/v1/products/{product_id}/availability", params))


@fuzz
@given(
    path=st.sampled_from(
        ["/api/v1/orders", "/api/v1/wallet/transactions", "/api/v1/products/{id}/availability"]
    ),
    raw=st.binary(max_size=200),
)
def test_raw_query_bytes_never_break(orders_placed, product, path, raw):
    # Percent-encoded bytes, invalid UTF-8 included, exactly as a client can send them.
    query = "&".join(
        f"{name}={quote_from_bytes(raw)}"
        for name in ("cursor", "placed_after", "denomination", "limit", "currency")
    )
    assert_json_answer(get(orders_placed, path.format(id=product.pk), query))
