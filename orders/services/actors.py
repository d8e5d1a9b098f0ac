"""Who is acting: a staff user, an API credential, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orders.addresses import client_address

if TYPE_CHECKING:
    from django.http import HttpRequest

    from orders.models import ApiCredential


def request_origin(request: HttpRequest) -> dict[str, Any]:
    """Where a request came from, as an actor records it: address (orders/addresses.py)
    and browser."""
    return {
        "ip_address": client_address(request),
        "user_agent": request.headers.get("User-Agent", ""),
    }


@dataclass(frozen=True, slots=True)
class Actor:
    """The identity recorded on status changes, ledger entries and audit events.

    `ip_address` and `user_agent` are filled from the request when there is one.
    """

    label: str
    user: Any = None
    credential: ApiCredential | None = None
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(label=label)

    @classmethod
    def for_user(cls, user: Any, *, ip_address: str | None = None, user_agent: str = "") -> Actor:
        return cls(
            label=f"user:{user.get_username()}",
            user=user,
            ip_address=ip_address,
            user_agent=user_agent[:300],
        )

    @classmethod
    def for_request(cls, request: HttpRequest) -> Actor:
        """The signed-in user of a staff request, with the address and browser it came from."""
        return cls.for_user(request.user, **request_origin(request))

    @classmethod
    def for_credential(
        cls, credential: ApiCredential, *, ip_address: str | None = None, user_agent: str = ""
    ) -> Actor:
        return cls(
            label=f"api:{credential.public_key}",
            credential=credential,
            ip_address=ip_address,
            user_agent=user_agent[:300],
        )

    @classmethod
    def for_link_recipient(cls, request: HttpRequest) -> Actor:
        """Whoever opened a gift link: nobody signed in, only an address and a browser."""
        origin = request_origin(request)
        return cls(
            label="link-recipient",
            ip_address=origin["ip_address"],
            user_agent=origin["user_agent"][:300],
        )

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)
