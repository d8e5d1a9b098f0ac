"""Selectors: read queries shared by the API, the dashboard and the services.
One module per workspace, as in `orders/services/`; callers import from the
module (`from orders.selectors.orders import order_list`).

Selectors own `select_related`/`only()` so no caller can cause N+1 queries, and
lists paginate by keyset (`paging`), so the cost of a page does not grow with
its depth.

- `paging`: cursors and keyset pages, shared by every list.
- `orders`: order filters, search, lists and one order's detail (support, API).
- `inventory`: allocatable stock, stock per denomination, low stock, expiry.
- `finance`: the refund queue, wallets, ledgers and credit requests.
- `reconciliation`: money in and out per day and currency.
- `overview`: the dashboard overview.
- `audit`: the audit log.
- `clients`: the clients workspace (clients, credentials, recent API errors);
  their webhook endpoints and delivery logs are `webhooks`'.
"""
