"""Pricing: what an order of a product costs, the same for the Charges API
and for placing the order (placing charges exactly what the quote says).

face_value = denomination × quantity
discount   = face_value × discount_percent / 100
fees       = fee_fixed + face_value × fee_percent / 100
taxes      = fees × tax_percent / 100        (gift-card face value is not taxed)
total      = face_value − discount + fees + taxes          (product currency)
wallet_amount = total × exchange_rate                    (wallet currency)
Every step rounds half-up to the cent.

`order_price` is that arithmetic and the paying wallet (what placing reads);
`charges_quote` adds the stock count that decides the delivery time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from orders import rules
from orders.enums import DeliveryTime
from orders.errors import ValidationFailed
from orders.models import Client, Product, Wallet
from orders.selectors.inventory import available_stock
from orders.selectors.prepared import Prepared, columns
from orders.services.wallets import money

HUNDRED = Decimal("100")
RATE_PLACES = Decimal("0.00000001")


@dataclass(frozen=True)
class Price:
    """What an order costs and the wallet that pays it: exactly what placing charges."""

    product: Product
    denomination: Decimal
    quantity: int
    currency: str
    face_value: Decimal
    discount: Decimal
    fees: Decimal
    taxes: Decimal
    total: Decimal
    wallet: Wallet | None
    wallet_currency: str
    exchange_rate: Decimal
    wallet_amount: Decimal


@dataclass(frozen=True)
class Quote(Price):
    """A price and the stock that decides its delivery time (the Charges API)."""

    delivery_time: DeliveryTime
    available_units: int


@cache
def _rates(spec: str) -> dict[tuple[str, str], Decimal]:
    rates: dict[tuple[str, str], Decimal] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            pair, value = part.split("=")
            base, quote = (code.strip().upper() for code in pair.split("/"))
            rate = Decimal(value.strip())
        except ValueError as exc:
            raise ImproperlyConfigured(f"EXCHANGE_RATES: cannot read {part!r}.") from exc
        if rate <= 0:
            raise ImproperlyConfigured(f"EXCHANGE_RATES: rate for {base}/{quote} must be > 0.")
        rates[(base, quote)] = rate
        rates.setdefault((quote, base), (Decimal(1) / rate).quantize(RATE_PLACES))
    return rates


def exchange_rate(*, from_currency: str, to_currency: str) -> Decimal | None:
    """Units of `to_currency` for one unit of `from_currency`, or None if unknown."""
    if from_currency == to_currency:
        return Decimal(1)
    return _rates(settings.EXCHANGE_RATES).get((from_currency, to_currency))


# The two reads of pricing every order makes, compiled once (selectors.prepared).
_ACTIVE_PRODUCT = Prepared(
    lambda pk: Product.objects.filter(pk=pk, is_active=True).values_list(*columns(Product)),
    "pk",
)
_CLIENT_WALLETS = Prepared(
    lambda client_id: Wallet.objects.filter(client_id=client_id).values_list(*columns(Wallet)),
    "client_id",
)


def product_for_order(*, product_id: object) -> Product:
    """An active product, or a validation error naming `product_id`."""
    try:
        pk = int(str(product_id))
    except ValueError:
        raise ValidationFailed("product_id must be an integer.", field="product_id") from None
    found = _ACTIVE_PRODUCT.instances(Product, pk=pk) if 0 < pk < 2**63 else []
    product = found[0] if found else None
    if product is None:
        raise ValidationFailed(f"No active product with id {pk}.", field="product_id")
    return product


def denomination_check(*, product: Product, denomination: object) -> Decimal:
    """The denomination as an exact amount, if the product sells it."""
    value = money(denomination, field="denomination")
    if product.is_range:
        assert product.min_denomination is not None and product.max_denomination is not None
        if not product.min_denomination <= value <= product.max_denomination:
            raise ValidationFailed(
                f"denomination must be between {product.min_denomination} and "
                f"{product.max_denomination} {product.currency}.",
                field="denomination",
            )
        return value
    allowed = product.denomination_list
    if value not in allowed:
        raise ValidationFailed(
            f"denomination {value} is not sold for this product; allowed: "
            f"{', '.join(str(a) for a in allowed)} {product.currency}.",
            field="denomination",
        )
    return value


def quantity_check(*, product: Product, quantity: object) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int | str):
        raise ValidationFailed("quantity must be a whole number.", field="quantity")
    try:
        value = int(quantity)
    except ValueError:
        raise ValidationFailed("quantity must be a whole number.", field="quantity") from None
    if value < 1:
        raise ValidationFailed("quantity must be at least 1.", field="quantity")
    if value > product.bulk_limit:
        raise ValidationFailed(
            f"quantity {value} exceeds this product's bulk limit of {product.bulk_limit}.",
            field="quantity",
        )
    return value


def _paying_wallet(*, client: Client, currency: str, wallet_currency: str | None) -> Wallet | None:
    wallets = {w.currency: w for w in _CLIENT_WALLETS.instances(Wallet, client_id=client.pk)}
    if wallet_currency:
        wanted = wallet_currency.strip().upper()
        if wanted not in wallets:
            raise ValidationFailed(f"You have no {wanted} wallet.", field="wallet_currency")
        return wallets[wanted]
    if currency in wallets:
        return wallets[currency]
    for code in sorted(wallets):
        if exchange_rate(from_currency=currency, to_currency=code) is not None:
            return wallets[code]
    return None


def order_price(
    *,
    client: Client,
    product_id: object,
    denomination: object,
    quantity: object,
    wallet_currency: str | None = None,
) -> Price:
    """Price an order and pick its wallet: two reads (the product, the client's wallets)."""
    product = product_for_order(product_id=product_id)
    value = denomination_check(product=product, denomination=denomination)
    units = quantity_check(product=product, quantity=quantity)
    face_value = rules.cents(value * units)
    discount = rules.cents(face_value * product.discount_percent / HUNDRED)
    fees = rules.cents(product.fee_fixed + face_value * product.fee_percent / HUNDRED)
    taxes = rules.cents(fees * product.tax_percent / HUNDRED)
    total = face_value - discount + fees + taxes
    wallet = _paying_wallet(
        client=client, currency=product.currency, wallet_currency=wallet_currency
    )
    pay_currency = wallet.currency if wallet else product.currency
    rate = exchange_rate(from_currency=product.currency, to_currency=pay_currency)
    if rate is None:
        raise ValidationFailed(
            f"No exchange rate from {product.currency} to {pay_currency}.", field="wallet_currency"
        )
    return Price(
        product=product,
        denomination=value,
        quantity=units,
        currency=product.currency,
        face_value=face_value,
        discount=discount,
        fees=fees,
        taxes=taxes,
        total=total,
        wallet=wallet,
        wallet_currency=pay_currency,
        exchange_rate=rate,
        wallet_amount=rules.cents(total * rate),
    )


def charges_quote(
    *,
    client: Client,
    product_id: object,
    denomination: object,
    quantity: object,
    wallet_currency: str | None = None,
) -> Quote:
    """Price an order exactly as placing it would charge it, with its delivery time."""
    price = order_price(
        client=client,
        product_id=product_id,
        denomination=denomination,
        quantity=quantity,
        wallet_currency=wallet_currency,
    )
    stock = available_stock(product_id=price.product.pk, denomination=price.denomination)
    return Quote(
        **{field.name: getattr(price, field.name) for field in fields(Price)},
        delivery_time=rules.delivery_time(stock=stock, units=price.quantity),
        available_units=stock,
    )
