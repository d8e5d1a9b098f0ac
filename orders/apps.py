from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Starship Orders"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from orders import (
            checks,  # noqa: F401  (registers system checks)
            logins,
        )
        from orders.db_roles import grant_after_migrate

        logins.connect()  # sign-in lockouts audited, audited unlock in the admin
        post_migrate.connect(grant_after_migrate, sender=self)
