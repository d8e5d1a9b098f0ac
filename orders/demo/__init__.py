"""The demo world of `manage.py seed_demo`, written through the services.

- `catalog`: who and what the demo sells (clients, vendors, products, stock)
  and the voucher imports through the inventory import service;
- `people`: staff logins, clients with their wallets, credentials and top-ups;
- `plan`: what happens to each demo order, decided up front from one seed;
- `play`: each planned order acted out with order_create, fulfilment run in
  this process (the simulated vendor scripted to deliver, reject, time out or
  crash), cancellation, refunds and finance decisions;
- `backdate`: the services stamp "now"; afterwards bulk UPDATEs move every
  order's timeline, ledger entries and vouchers back to when the plan says
  they happened. Audit events keep their real time: each is sealed (HMAC over
  its content, created_at included) into a chain, the database refuses to
  update them, and their checkpoints are already written outside it;
- `world`: the order in which all of that runs, in one transaction.
"""
