"""Bills: the SQL service over seeded demo data, the HTTP client against a real local server,
and the choice between them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from sqlalchemy import func, select

from bot.core.db import session_scope
from bot.core.queries.billing import (
    BillingUnavailable,
    HttpBillingService,
    SqlBillingService,
    billing_service_from_settings,
    mask_name,
)
from bot.core.queries.billing_models import BillRecord
from bot.core.seed import DEMO_ACCOUNTS, residential_amount, seed_demo_data
from tests.fakes.json_server import Request, json_server


@pytest.fixture
def seeded(db_url: str, now: datetime) -> str:
    with session_scope(db_url) as session:
        seed_demo_data(session, now)
    return db_url


def test_latest_bill_of_each_account_length(seeded: str) -> None:
    service = SqlBillingService(seeded)
    for account_no in ("0301234567", "0301234567890", "0754012345678901"):
        bill = service.latest_bill(account_no)
        assert bill is not None and bill.account_no == account_no
        assert bill.month == "2026-10"  # now is 2026-11-27: the latest bill is October's
        assert bill.due_date == date(2026, 11, 25)
        assert bill.amount_yuan > 0 and bill.usage_kwh > 0
        assert "*" in bill.customer_name


def test_bill_of_a_month_and_arrears(seeded: str) -> None:
    service = SqlBillingService(seeded)
    paid_up = service.latest_bill("0301234567")
    assert paid_up.arrears_yuan == Decimal("0.00") and paid_up.customer_name == "陈*明"
    two_unpaid = service.latest_bill("0754012345678901")
    september = service.latest_bill("0754012345678901", "2026-09")
    assert september.month == "2026-09"
    assert two_unpaid.arrears_yuan == two_unpaid.amount_yuan + september.amount_yuan
    august = service.latest_bill("0754012345678901", "2026-08")
    assert august.arrears_yuan == 0
    oldest = service.latest_bill("0301234567", "2025-10")
    assert oldest is not None  # 13 months: 2025-10 .. 2026-10
    assert service.latest_bill("0301234567", "2025-09") is None
    assert service.latest_bill("0000000000") is None


def test_seed_is_idempotent(seeded: str, now: datetime) -> None:
    with session_scope(seeded) as session:
        again = seed_demo_data(session, now)
        count = session.execute(select(func.count(BillRecord.id))).scalar_one()
    assert again == {"billing": 0, "outages": 0}
    assert count == len(DEMO_ACCOUNTS) * 13
    lengths = {len(account.account_no) for account in DEMO_ACCOUNTS}
    assert lengths == {10, 13, 16}


def test_seed_needs_an_aware_now(db_url: str) -> None:
    with session_scope(db_url) as session, pytest.raises(ValueError):
        seed_demo_data(session, datetime(2026, 11, 27))


def test_residential_ladder() -> None:
    assert residential_amount(Decimal(100), 1) == Decimal("58.83")
    # 200 × 0.5883 + 100 × 0.6383 in winter; summer's first step is 260 kWh.
    assert residential_amount(Decimal(300), 12) == Decimal("181.49")
    assert residential_amount(Decimal(300), 7) == Decimal("178.49")


def test_mask_name() -> None:
    assert [mask_name(n) for n in ("陈伟明", "陈明", "陈", "欧阳小明", "")] == [
        "陈*明",
        "陈*",
        "陈",
        "欧**明",
        "",
    ]


# -- HTTP -------------------------------------------------------------------------------

BILLS: Dict[str, List[Dict[str, Any]]] = {
    "0301234567890": [
        {
            "account_no": "0301234567890",
            "month": "2026-09",
            "usage_kwh": 310,
            "amount_yuan": "185.20",
            "due_date": "2026-10-25",
            "arrears_yuan": 0,
            "customer_name": "林晓燕",
        },
        {
            "account_no": "0301234567890",
            "month": "2026-10",
            "usage_kwh": 250.5,
            "amount_yuan": 147.37,
            "due_date": "2026-11-25",
            "arrears_yuan": 147.37,
            "customer_name": "林晓燕",
        },
    ]
}


BillingRequest = Tuple[str, Dict[str, List[str]], str]  # path, query, Authorization


class FakeBilling:
    """A billing system's HTTP API: GET /accounts/{no}/bills[?month=]; /broken, /garbage."""

    def __init__(self) -> None:
        self.requests: List[BillingRequest] = []

    def handle(self, request: Request) -> Tuple[int, Any]:
        self.requests.append(
            (request.path, request.query, request.headers.get("Authorization", ""))
        )
        parts = request.path.strip("/").split("/")
        if parts[:1] == ["broken"]:
            return 500, {"error": "down"}
        if parts[:1] == ["garbage"]:
            return 200, "not json"
        if len(parts) == 3 and parts[0] == "accounts" and parts[2] == "bills" and parts[1] in BILLS:
            month = request.query.get("month", [None])[0]
            bills = [b for b in BILLS[parts[1]] if month in (None, b["month"])]
            return (200, bills) if bills else (404, {"error": "no bill"})
        return 404, {"error": "unknown account"}


@pytest.fixture
def fake_billing() -> FakeBilling:
    return FakeBilling()


@pytest.fixture
def billing_server(fake_billing: FakeBilling) -> Iterator[str]:
    with json_server(fake_billing.handle) as url:
        yield url


def test_http_latest_and_monthly_bill(billing_server: str, fake_billing: FakeBilling) -> None:
    service = HttpBillingService(billing_server + "/", token="secret", timeout=2)
    latest = service.latest_bill("0301234567890")
    assert latest.month == "2026-10" and latest.amount_yuan == Decimal("147.37")
    assert latest.usage_kwh == Decimal("250.5") and latest.due_date == date(2026, 11, 25)
    assert latest.customer_name == "林*燕"
    september = service.latest_bill("0301234567890", "2026-09")
    assert september.month == "2026-09" and september.amount_yuan == Decimal("185.20")
    path, query, auth = fake_billing.requests[-1]
    assert path == "/accounts/0301234567890/bills" and query == {"month": ["2026-09"]}
    assert auth == "Bearer secret"
    assert service.latest_bill("0301234567890", "2020-01") is None
    assert service.latest_bill("0000000000") is None


def test_http_failures_raise_billing_unavailable(billing_server: str) -> None:
    with pytest.raises(BillingUnavailable):
        HttpBillingService(billing_server + "/broken").latest_bill("0301234567")
    with pytest.raises(BillingUnavailable):
        HttpBillingService(billing_server + "/garbage").latest_bill("0301234567")
    with pytest.raises(BillingUnavailable):  # nothing listens on port 9 (discard) here
        HttpBillingService("http://127.0.0.1:9", timeout=1).latest_bill("0301234567")


def test_service_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(billing_service_from_settings(), SqlBillingService)
    monkeypatch.setenv("BILLING_API_URL", "http://billing.example/api")
    monkeypatch.setenv("BILLING_API_TOKEN", "t")
    service = billing_service_from_settings()
    assert isinstance(service, HttpBillingService)
    assert (service.base_url, service.token) == ("http://billing.example/api", "t")


def test_sql_errors_raise_billing_unavailable(tmp_path) -> None:
    # A database without the tables (never migrated).
    service = SqlBillingService(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(BillingUnavailable):
        service.latest_bill("0301234567")
