from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Starship Orders"

    def ready(self) -> None:
        from orders import (
            checks,  # noqa: F401  (registers system checks)
            logins,
        )

        logins.connect()  # sign-in lockouts audited, audited unlock in the admin
