from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Starship Orders"

    def ready(self) -> None:
        from django.contrib import admin
        from django.db.models.signals import post_migrate

        from orders import (
            checks,  # noqa: F401  (registers system checks)
            logins,
        )
        from orders.dashboard import stepup, twofactor
        from orders.db_roles import grant_after_migrate

        logins.connect()  # sign-in lockouts audited, audited unlock in the admin
        stepup.connect()  # a new sign-in: is a second factor due?
        # The admin signs in through the staff sign-in (password, then second factor).
        admin.site.login = twofactor.admin_login  # type: ignore[method-assign]
        post_migrate.connect(grant_after_migrate, sender=self)
