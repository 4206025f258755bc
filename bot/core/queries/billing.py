"""Bill look-ups behind one small interface, so the utility's billing system can replace ours.

`billing_service_from_settings()` returns the HTTP client when BILLING_API_URL is set
(token: BILLING_API_TOKEN, timeout seconds: BILLING_API_TIMEOUT), else the SQL service over
the local billing_accounts/bills tables (demo data from bot.core.seed).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Dict, Iterable, Mapping, Optional, Protocol
from urllib.parse import quote

import requests
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bot.core.db import session_scope
from bot.core.queries.billing_models import BillingAccount, BillRecord
from bot.core.settings import get_settings

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Bill:
    """One month's bill as the bot may tell it (the customer's name is masked)."""

    account_no: str
    month: str  # YYYY-MM
    usage_kwh: Decimal
    amount_yuan: Decimal
    due_date: date
    arrears_yuan: Decimal  # everything unpaid up to and including this month
    customer_name: str  # masked, e.g. 陈*明


class BillingUnavailable(RuntimeError):
    """The billing system could not answer (down, timed out, or answered nonsense)."""


class BillingService(Protocol):
    """Anything that can find an account's bill."""

    def latest_bill(self, account_no: str, month: Optional[str] = None) -> Optional[Bill]:
        """The bill of `month` (YYYY-MM), or the latest one; None if there is none."""

    def contact_matches(self, account_no: str, phone_last4: str) -> Optional[bool]:
        """Whether the account's phone on file ends with `phone_last4`; None when there is no
        such account or no phone on file (the customer is then sent to a person)."""


def fen_to_yuan(fen: int) -> Decimal:
    """12345 fen → Decimal("123.45")."""
    return (Decimal(int(fen)) / 100).quantize(Decimal("0.01"))


def mask_name(name: str) -> str:
    """陈伟明 → 陈*明, 陈明 → 陈*, longer names keep first and last character."""
    name = (name or "").strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


class SqlBillingService:
    """Bills from the billing_accounts/bills tables of the application database."""

    def __init__(self, url: Optional[str] = None) -> None:
        self.url = url

    def latest_bill(self, account_no: str, month: Optional[str] = None) -> Optional[Bill]:
        try:
            with session_scope(self.url) as session:
                account = session.get(BillingAccount, account_no)
                if account is None:
                    return None
                query = select(BillRecord).where(BillRecord.account_no == account_no)
                if month:
                    query = query.where(BillRecord.month == month)
                record = session.execute(
                    query.order_by(BillRecord.month.desc()).limit(1)
                ).scalar_one_or_none()
                if record is None:
                    return None
                arrears_fen = session.execute(
                    select(func.sum(BillRecord.amount_fen - BillRecord.paid_fen)).where(
                        BillRecord.account_no == account_no, BillRecord.month <= record.month
                    )
                ).scalar_one()
                return Bill(
                    account_no=account_no,
                    month=record.month,
                    usage_kwh=Decimal(record.usage_kwh),
                    amount_yuan=fen_to_yuan(record.amount_fen),
                    due_date=record.due_date,
                    arrears_yuan=fen_to_yuan(arrears_fen or 0),
                    customer_name=mask_name(account.customer_name),
                )
        except SQLAlchemyError as error:
            raise BillingUnavailable(f"billing database error: {error}") from error

    def contact_matches(self, account_no: str, phone_last4: str) -> Optional[bool]:
        try:
            with session_scope(self.url) as session:
                account = session.get(BillingAccount, account_no)
                if account is None or not account.phone:
                    return None
                return secrets.compare_digest(str(account.phone)[-4:], phone_last4)
        except SQLAlchemyError as error:
            raise BillingUnavailable(f"billing database error: {error}") from error


class HttpBillingService:
    """Client of a billing REST API: ``GET {base}/accounts/{no}/bills?month=YYYY-MM``.

    The answer is a bill object (the fields of `Bill`, dates as YYYY-MM-DD), a list of them,
    or ``{"bills": [...]}``; the latest month is taken. 404 means no such account or bill.
    The caller is verified with ``POST {base}/accounts/{no}/verify`` ``{"phone_last4": "5678"}``
    → ``{"verified": true|false}`` (404: no such account): the phone itself never leaves the
    billing system.
    """

    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        http: Optional[requests.Session] = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.http = http or requests.Session()

    def latest_bill(self, account_no: str, month: Optional[str] = None) -> Optional[Bill]:
        url = f"{self.base_url}/accounts/{quote(account_no, safe='')}/bills"
        params = {"month": month} if month else None
        try:
            response = self.http.get(
                url, params=params, headers=self._headers(), timeout=self.timeout
            )
        except requests.RequestException as error:
            raise BillingUnavailable(f"billing API unreachable: {error}") from error
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BillingUnavailable(f"billing API answered HTTP {response.status_code}")
        try:
            return _bill_from_json(response.json(), account_no, month)
        except (ValueError, KeyError, TypeError, ArithmeticError) as error:
            raise BillingUnavailable(f"billing API sent an unreadable bill: {error}") from error

    def _headers(self) -> Dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def contact_matches(self, account_no: str, phone_last4: str) -> Optional[bool]:
        url = f"{self.base_url}/accounts/{quote(account_no, safe='')}/verify"
        try:
            response = self.http.post(
                url,
                json={"phone_last4": phone_last4},
                headers=self._headers(),
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise BillingUnavailable(f"billing API unreachable: {error}") from error
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BillingUnavailable(f"billing API answered HTTP {response.status_code}")
        try:
            return bool(response.json()["verified"])
        except (ValueError, KeyError, TypeError) as error:
            raise BillingUnavailable(f"billing API sent an unreadable answer: {error}") from error


def _bill_from_json(payload: Any, account_no: str, month: Optional[str]) -> Optional[Bill]:
    items: Iterable[Mapping[str, Any]]
    if isinstance(payload, Mapping) and "bills" in payload:
        items = payload["bills"]
    elif isinstance(payload, list):
        items = payload
    else:
        items = [payload]
    bills = [_parse_bill(item, account_no) for item in items]
    if month:
        bills = [bill for bill in bills if bill.month == month]
    return max(bills, key=lambda bill: bill.month) if bills else None


def _parse_bill(item: Mapping[str, Any], account_no: str) -> Bill:
    return Bill(
        account_no=str(item.get("account_no") or account_no),
        month=str(item["month"])[:7],
        usage_kwh=Decimal(str(item["usage_kwh"])),
        amount_yuan=Decimal(str(item["amount_yuan"])),
        due_date=date.fromisoformat(str(item["due_date"])[:10]),
        arrears_yuan=Decimal(str(item.get("arrears_yuan", "0"))),
        customer_name=mask_name(str(item.get("customer_name") or "")),
    )


def billing_service_from_settings() -> BillingService:
    """HTTP when BILLING_API_URL is set, else the local SQL tables (DATABASE_URL)."""
    settings = get_settings()
    if settings.billing_api_url:
        return HttpBillingService(
            settings.billing_api_url,
            token=settings.billing_api_token or None,
            timeout=settings.billing_api_timeout,
        )
    return SqlBillingService()
