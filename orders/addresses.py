"""The client's address, and address lists (CIDR networks): the one home of both.

`client_address(request)` is the address every part of the system records and
checks: the audit actor, the API credentials' allowlists, the sign-in throttle
(django-axes) and the log of a refused address. It is REMOTE_ADDR, unless
REMOTE_ADDR is one of TRUSTED_PROXIES: then X-Forwarded-For is read from the
right, past every trusted proxy, and the first address that is not one is the
client's (the entries to its left were written by the client and can be
forged). With TRUSTED_PROXIES empty (the default) X-Forwarded-For is ignored,
unless SECURE_PROXY_SSL_HEADER says one TLS proxy is in front: then its entry,
the last, is the client's.

`is_public_address(value)` is the other rule of addresses: where the server
itself may send requests (webhooks, SSRF), a public unicast address only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

from orders.errors import ValidationFailed

type Network = ipaddress.IPv4Network | ipaddress.IPv6Network
type Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:203.0.113.7 is 203.0.113.7
    return address


def network_parse(value: object, *, field: str = "allowed_ips") -> str:
    """One network in its normal text (`203.0.113.0/24`, `2001:db8::/32`; a bare
    address is its /32 or /128), or ValidationFailed saying what is wrong."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValidationFailed(
            f"{value!r} is not an IP address or CIDR network (e.g. 203.0.113.0/24, 2001:db8::/32).",
            field=field,
        ) from None
    raise ValidationFailed(
        f"{value!r} has host bits set; did you mean {loose}?", field=field
    ) from None


def networks_parse(values: Iterable[object], *, field: str = "allowed_ips") -> list[str]:
    """The networks of `values` normalized, without repeats, in the order given."""
    networks: list[str] = []
    for value in values:
        network = network_parse(value, field=field)
        if network not in networks:
            networks.append(network)
    return networks


@lru_cache(maxsize=256)
def _networks(texts: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


def address_in(address: str | None, networks: Iterable[str]) -> bool:
    """Whether `address` lies in one of `networks` (normalized texts, as stored)."""
    parsed = _address(address or "")
    if parsed is None:
        return False
    return any(
        parsed.version == network.version and parsed in network
        for network in _networks(tuple(networks))
    )


def client_address(request: HttpRequest) -> str | None:
    """The address the request came from (see the module's docstring), or None."""
    remote = _address(request.META.get("REMOTE_ADDR") or "")
    if remote is None:
        return None
    proxies = tuple(settings.TRUSTED_PROXIES)
    if not proxies and getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        # One TLS proxy in front (SECURE_PROXY_SSL_HEADER) and none listed: that
        # proxy alone is trusted, its own entry (the last) is the client's, as
        # before TRUSTED_PROXIES existed; else every user would share its address.
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        appended = _address(forwarded.rsplit(",", 1)[-1]) if forwarded else None
        return str(appended or remote)
    if not proxies or not address_in(str(remote), _proxy_networks(proxies)):
        return str(remote)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    nearest = remote
    for entry in reversed(forwarded.split(",")):
        hop = _address(entry)
        if hop is None:
            break  # unreadable: nothing to its left can be trusted
        if not address_in(str(hop), _proxy_networks(proxies)):
            return str(hop)
        nearest = hop
    return str(nearest)  # every hop a trusted proxy (or none readable): the farthest one


@lru_cache(maxsize=8)
def _proxy_networks(proxies: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(networks_parse(proxies, field="TRUSTED_PROXIES"))


# Networks no webhook may be sent to, beyond what `ipaddress` calls non-global:
# written out so that the rule reads as a list (RFC 6890's special-purpose blocks).
_NOT_PUBLIC: tuple[Network, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "fc00::/7",  # unique-local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
        "64:ff9b:1::/48",  # local-use NAT64
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches: mapped, NAT64, 6to4 or Teredo."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public_address(value: str) -> bool:
    """Whether `value` is a public unicast address a server may send to: not
    private, loopback, link-local, unique-local, multicast, reserved, CGNAT,
    0.0.0.0/8 or unspecified, also when written as IPv4 inside IPv6. The one
    rule of where outgoing requests (webhooks) may go."""
    try:
        address: Address = ipaddress.ip_address(value.strip().split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(str(embedded))
    if any(address.version == network.version and address in network for network in _NOT_PUBLIC):
        return False
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )
