"""Domain errors carry a code; the API's one table maps each code to its HTTP status."""

from __future__ import annotations

import importlib
import pkgutil

import orders
from orders import errors
from orders.api.errors import STATUS_BY_CODE, http_status


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_domain_error_code_has_a_status():
    # Services define a few errors of their own: load every module first.
    for module in pkgutil.walk_packages(orders.__path__, "orders."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    for cls in [errors.DomainError, *_subclasses(errors.DomainError)]:
        assert cls.code in STATUS_BY_CODE, cls.__name__
        assert "http_status" not in vars(cls), cls.__name__


def test_statuses_are_the_ones_the_api_has_always_answered():
    expected = {
        errors.ValidationFailed: 400,
        errors.InvalidAmount: 400,
        errors.VoucherImportRejected: 400,
        errors.InsufficientFunds: 402,
        errors.PermissionDenied: 403,
        errors.PriceChangeOwnRequest: 403,
        errors.NotFound: 404,
        errors.Conflict: 409,
        errors.IllegalTransition: 409,
        errors.VoucherNotRevealable: 409,
        errors.OrderNotCancellable: 409,
        errors.OrderNotRetryable: 409,
        errors.RefundNotDue: 409,
        errors.InventoryConflict: 409,
        errors.PriceChangeNotPending: 409,
        errors.PriceChangeStale: 409,
        errors.CreditNeedsSecondApprover: 409,
        errors.CreditOwnRequest: 409,
        errors.CreditRequestDecided: 409,
        errors.RefundAlreadyApproved: 409,
        errors.RateLimited: 429,
        errors.DecryptionFailed: 500,
    }
    for cls, status in expected.items():
        error = cls.__new__(cls)
        assert http_status(error) == status, cls.__name__


def test_a_code_without_a_row_answers_as_its_parent():
    class StockMoved(errors.Conflict):
        code = "stock_moved"

    assert http_status(StockMoved("Someone else took the unit.")) == 409
