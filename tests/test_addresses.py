"""The client's address (REMOTE_ADDR, or X-Forwarded-For through trusted proxies)
and the networks of an allowlist."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from orders.addresses import address_in, client_address, networks_parse
from orders.checks import trusted_proxies_valid
from orders.errors import ValidationFailed


def _request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_address_is_the_peers(settings):
    settings.TRUSTED_PROXIES = []
    assert client_address(_request("198.51.100.1", "203.0.113.9")) == "198.51.100.1"


def test_behind_the_one_tls_proxy_with_none_listed_its_appended_entry_is_the_clients(settings):
    # As sign-in throttling counted before TRUSTED_PROXIES: a deployment that set
    # only SECURE_PROXY_SSL_HEADER keeps telling its users apart.
    settings.TRUSTED_PROXIES = []
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client_address(_request("10.0.0.1", "192.0.2.66, 203.0.113.9")) == "203.0.113.9"
    assert client_address(_request("10.0.0.1")) == "10.0.0.1"


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("10.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.1", "192.0.2.66, 203.0.113.9", "203.0.113.9"),  # left entry: forgeable
        ("10.0.0.1", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # two trusted hops
        ("10.0.0.1", "garbage, 203.0.113.9", "203.0.113.9"),
        ("10.0.0.1", "203.0.113.9, garbage", "10.0.0.1"),  # unreadable: stop at the proxy
        ("10.0.0.1", "", "10.0.0.1"),
        ("198.51.100.1", "203.0.113.9", "198.51.100.1"),  # not a trusted proxy
        ("2001:db8::1", "2001:db8:ffff::5", "2001:db8:ffff::5"),
        ("10.0.0.1", "::ffff:203.0.113.9", "203.0.113.9"),  # IPv4-mapped
    ],
)
def test_through_trusted_proxies_the_right_most_untrusted_forwarded_address(
    settings, remote, forwarded, expected
):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8::1"]
    assert client_address(_request(remote, forwarded)) == expected


def test_networks_are_normalized_and_bad_ones_refused_clearly():
    assert networks_parse([" 203.0.113.0/24", "2001:DB8::/32", "192.0.2.7", "203.0.113.0/24"]) == [
        "203.0.113.0/24",
        "2001:db8::/32",
        "192.0.2.7/32",
    ]
    with pytest.raises(ValidationFailed, match="not an IP address or CIDR"):
        networks_parse(["300.1.2.3/8"])
    with pytest.raises(ValidationFailed, match=r"did you mean 203\.0\.113\.0/24"):
        networks_parse(["203.0.113.7/24"])


def test_an_address_is_in_a_network_of_its_own_family_only():
    assert address_in("203.0.113.200", ["203.0.113.0/24"])
    assert address_in("2001:db8::5", ["203.0.113.0/24", "2001:db8::/32"])
    assert not address_in("198.51.100.1", ["203.0.113.0/24", "2001:db8::/32"])
    assert not address_in(None, ["0.0.0.0/0"])


def test_a_bad_trusted_proxy_fails_the_system_check(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.internal"]
    errors = trusted_proxies_valid(None)
    assert [e.id for e in errors] == ["orders.E020"]
    assert "proxy.internal" in errors[0].msg
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert trusted_proxies_valid(None) == []
