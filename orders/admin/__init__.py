"""Django admin: catalog and inventory to manage, everything else to read.

Voucher secrets never leave the database through the admin: the encrypted
columns are not in any form, the change lists do not even load them, and the
detail pages show only masks. Money, status and the audit trail change only
through services, so their admins are read-only. Every add, change, delete
and action writes an AuditEvent (admin.*) with the fields' before/after, never
a secret; products' prices change through services/catalog.py (maker-checker).
Deletes are for superusers only, and only where nothing points at the row.

One module per thing administered; Django's autodiscovery imports this
package, and importing the modules registers their admins.
"""

from orders.admin import accounts, audit, catalog, inventory, money, orders, webhooks

__all__ = ["accounts", "audit", "catalog", "inventory", "money", "orders", "webhooks"]
