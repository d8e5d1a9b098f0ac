"""Fixtures of the fulfilment tests: a funded client with live and test keys,
products with stock, in-process and subprocess workers, and a bounded wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker

from orders.models import ApiCredential, Client, Order, Product, Voucher, Wallet
from orders.services.actors import Actor
from orders.services.clients import client_create, credential_issue
from orders.services.placing import Customer, order_create
from tests.conftest import TEST_AUDIT_KEY, TEST_FINGERPRINT_KEY, TEST_KEY_1
from tests.factories import ProductFactory, VoucherFactory

BASE_DIR = Path(settings.BASE_DIR)
TERMINAL = ("DELIVERED", "PARTIALLY_DELIVERED", "FAILED", "CANCELLED")


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float = 30,
    tick: Callable[[], None] | None = None,
    what: str = "condition",
) -> None:
    """Poll `condition` (running `tick` between polls) until true or the deadline."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        if condition():
            return
        pause.wait(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_ready_tasks() -> None:
    """Run every ready task in this process, as one db_worker --batch would."""
    Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="in-process",
        excluded_queue_names=[],
    ).run()


def all_terminal(order_ids: list[int]) -> bool:
    return Order.objects.filter(pk__in=order_ids, status__in=TERMINAL).count() == len(order_ids)


@dataclass
class Buyer:
    client: Client
    wallet: Wallet
    live: ApiCredential
    test: ApiCredential
    live_secret: str = ""
    test_secret: str = ""

    def api_headers(self, *, sandbox: bool = False) -> dict[str, str]:
        """X-API-Key / X-API-Secret of the live or the test credential."""
        credential = self.test if sandbox else self.live
        secret = self.test_secret if sandbox else self.live_secret
        return {"X-API-Key": credential.public_key, "X-API-Secret": secret}

    def place(
        self,
        product: Product,
        reference_code: str,
        *,
        quantity: int = 1,
        denomination: str = "25.00",
        sandbox: bool = False,
        **extra: Any,
    ) -> Order:
        credential = self.test if sandbox else self.live
        placed = order_create(
            client=self.client,
            actor=Actor.for_credential(credential),
            credential=credential,
            product_id=product.pk,
            denomination=denomination,
            quantity=quantity,
            reference_code=reference_code,
            customer=Customer(name="Ada", email="ada@example.com"),
            **extra,
        )
        return placed.order


@pytest.fixture
def buyer(system_actor: Actor) -> Buyer:
    client, wallet, issued = client_create(
        name="Orbital Rewards", currency="USD", balance="5000.00", actor=system_actor
    )
    test = credential_issue(client=client, actor=system_actor, mode=ApiCredential.Mode.TEST)
    return Buyer(client, wallet, issued.credential, test.credential, issued.secret, test.secret)


@pytest.fixture
def product() -> Product:
    return cast(Product, ProductFactory(name="Nebula Books", bulk_limit=40))


def stock(product: Product, count: int, *, denomination: str = "25.00", **kw: Any) -> list[Voucher]:
    return VoucherFactory.create_batch(
        count, product=product, denomination=Decimal(denomination), **kw
    )


def expiring_in(days: int) -> Any:
    return timezone.now() + timedelta(days=days)


# --- Workers in a subprocess (PostgreSQL: they must reach the test database) ---


def worker_env(**overrides: str) -> dict[str, str]:
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "VOUCHER_KEYS": f"k1:{TEST_KEY_1}",
            "VOUCHER_FINGERPRINT_KEY": TEST_FINGERPRINT_KEY,
            "AUDIT_KEY": TEST_AUDIT_KEY,
            "AUDIT_CHECKPOINT_PATH": str(settings.AUDIT_CHECKPOINT_PATH),
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "TASK_LEASE_SECONDS": "2",
            "WORKER_SWEEP_SECONDS": "1",
            "FULFILMENT_RETRY_BASE_SECONDS": "1",
            "VENDOR_SIM_LATENCY_MS": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(overrides)
    return env


class WorkerPool:
    """Worker subprocesses started by a test; all killed at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        n = len(self.procs) + 1
        log = open(self.log_dir / f"worker{n}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_worker",
                "--interval=0.1",
                f"--worker-id=test-worker-{n}",
            ],
            cwd=BASE_DIR,
            env=worker_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


@pytest.fixture
def workers(transactional_db: None, tmp_path: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(tmp_path)
    yield pool
    pool.stop_all()
