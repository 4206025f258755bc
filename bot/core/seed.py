"""Demo data for the query services: billing accounts with 13 months of bills, and outages in
Shantou placed around `now`, so a fresh install always has something to show.

Idempotent: existing accounts and bills are kept, missing months are added, and demo outages
that have ended are moved forward again.

    from bot.core.db import upgrade_database
    from bot.core.seed import seed_default_database
    upgrade_database(); seed_default_database()
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Dict, List, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.clock import local_zone, to_local, to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.queries.billing_models import BillingAccount, BillRecord
from bot.core.queries.outage_models import PlannedOutage

BILL_MONTHS = 13
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DemoAccount:
    account_no: str
    customer_name: str
    address: str
    customer_type: str
    base_kwh: int
    unpaid_months: int  # the latest N bills are unpaid (arrears)
    phone: str  # the contact phone on file (its last four digits verify a bill query)


DEMO_ACCOUNTS = (
    DemoAccount("0301234567", "陈伟明", "龙湖区长平路88号3栋502", "居民", 210, 0, "13812345678"),
    DemoAccount(
        "0301234567890", "林晓燕", "潮南区峡山街道东山路12号", "居民", 260, 1, "13923456781"
    ),
    DemoAccount("0754012345678901", "黄志强", "金平区金砂路21号", "居民", 320, 2, "13534567812"),
    DemoAccount(
        "0754012345678902",
        "峡山明辉五金厂",
        "潮南区峡山街道西山路5号",
        "非居民",
        2600,
        1,
        "075488881234",
    ),
    DemoAccount("0301987654", "郑丽华", "澄海区莲下镇程洋岗村", "居民", 150, 0, "15845678123"),
    DemoAccount("0301765432101", "李嘉欣", "南澳县后宅镇海滨路3号", "居民", 180, 0, "18656781234"),
)


@dataclass(frozen=True)
class DemoOutage:
    ref: str
    district: str
    area: str
    days_ahead: int
    hours: str  # "08:00-17:00" local; "" = ongoing, from an hour ago to three hours ahead
    reason: str

    @property
    def kind(self) -> str:
        return "planned" if self.hours else "ongoing"


DEMO_OUTAGES = (
    DemoOutage("demo-1", "潮南区", "峡山街道东山路、西山路", 1, "08:00-17:00", "10kV线路检修"),
    DemoOutage("demo-2", "龙湖区", "长平路、金霞街道黄山路", 2, "07:30-12:30", "配变更换"),
    DemoOutage("demo-3", "金平区", "金砂街道金砂路、东厦路", 0, "", "电缆故障抢修"),
    DemoOutage("demo-4", "澄海区", "莲下镇程洋岗村、槐泽村", 3, "08:00-18:00", "线路迁改"),
    DemoOutage("demo-5", "濠江区", "达濠街道府前路、赤港路", 5, "09:00-15:00", "设备试验"),
    DemoOutage("demo-6", "潮阳区", "棉北街道兴归路", 10, "08:00-16:00", "业扩接入施工"),
)

# Guangdong residential ladder (see catalog faq ask_tariff): (upper kWh, yuan per kWh).
_LADDER_SUMMER = ((260, "0.5883"), (600, "0.6383"), (None, "0.8883"))
_LADDER_OTHER = ((200, "0.5883"), (400, "0.6383"), (None, "0.8883"))
_NON_RESIDENTIAL_RATE = Decimal("0.6834")


def _months_before(local_day: date, count: int) -> List[Tuple[int, int]]:
    """The `count` months before `local_day`'s month, oldest first."""
    year, month = local_day.year, local_day.month
    months = []
    for _ in range(count):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        months.append((year, month))
    return list(reversed(months))


def _jitter(*parts: object) -> Decimal:
    """A stable factor in [0.85, 1.15) from the parts (demo data must not change per run)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return Decimal(85 + digest[0] % 30) / 100


def residential_amount(kwh: Decimal, month: int) -> Decimal:
    """The bill of `kwh` under the residential ladder (summer = May–October)."""
    ladder = _LADDER_SUMMER if 5 <= month <= 10 else _LADDER_OTHER
    amount, lower = Decimal(0), Decimal(0)
    for upper, rate in ladder:
        top = kwh if upper is None else min(kwh, Decimal(upper))
        if top > lower:
            amount += (top - lower) * Decimal(rate)
        if upper is None or kwh <= upper:
            break
        lower = Decimal(upper)
    return amount.quantize(CENT, ROUND_HALF_UP)


def _bill(account: DemoAccount, year: int, month: int, unpaid: bool) -> BillRecord:
    summer = Decimal("1.5") if 6 <= month <= 9 else Decimal(1)
    kwh = (Decimal(account.base_kwh) * summer * _jitter(account.account_no, year, month)).quantize(
        Decimal(1)
    )
    if account.customer_type == "居民":
        amount = residential_amount(kwh, month)
    else:
        amount = (kwh * _NON_RESIDENTIAL_RATE).quantize(CENT, ROUND_HALF_UP)
    due_year, due_month = (year + 1, 1) if month == 12 else (year, month + 1)
    amount_fen = int(amount * 100)
    return BillRecord(
        account_no=account.account_no,
        month=f"{year:04d}-{month:02d}",
        usage_kwh=int(kwh),
        amount_fen=amount_fen,
        paid_fen=0 if unpaid else amount_fen,
        due_date=date(due_year, due_month, 25),
    )


def _seed_accounts(session: Session, local_day: date) -> int:
    added = 0
    months = _months_before(local_day, BILL_MONTHS)
    for account in DEMO_ACCOUNTS:
        stored = session.get(BillingAccount, account.account_no)
        if stored is None:
            session.add(
                BillingAccount(
                    account_no=account.account_no,
                    customer_name=account.customer_name,
                    address=account.address,
                    customer_type=account.customer_type,
                    phone=account.phone,
                )
            )
            added += 1
        elif stored.phone is None:
            stored.phone = account.phone  # databases seeded before phones were on file
        existing = set(
            session.execute(
                select(BillRecord.month).where(BillRecord.account_no == account.account_no)
            ).scalars()
        )
        for index, (year, month) in enumerate(months):
            if f"{year:04d}-{month:02d}" not in existing:
                unpaid = index >= len(months) - account.unpaid_months
                session.add(_bill(account, year, month, unpaid))
                added += 1
    return added


def _outage_times(demo: DemoOutage, now_local: datetime) -> Tuple[datetime, datetime]:
    if not demo.hours:
        return now_local - timedelta(hours=1), now_local + timedelta(hours=3)
    day = now_local.date() + timedelta(days=demo.days_ahead)
    start, end = (time.fromisoformat(hhmm) for hhmm in demo.hours.split("-"))
    zone = local_zone()
    return datetime.combine(day, start, tzinfo=zone), datetime.combine(day, end, tzinfo=zone)


def _seed_outages(session: Session, now: datetime) -> int:
    changed = 0
    now_local, now_utc = to_local(now), to_utc_naive(now)
    for demo in DEMO_OUTAGES:
        outage: Optional[PlannedOutage] = session.execute(
            select(PlannedOutage).where(PlannedOutage.ref == demo.ref)
        ).scalar_one_or_none()
        if outage is not None and outage.end_at > now_utc:
            continue  # still current or upcoming: leave it alone
        if outage is None:
            outage = PlannedOutage(ref=demo.ref)
            session.add(outage)
        start_at, end_at = _outage_times(demo, now_local)
        outage.district, outage.area, outage.reason = demo.district, demo.area, demo.reason
        outage.kind = demo.kind
        outage.start_at, outage.end_at = to_utc_naive(start_at), to_utc_naive(end_at)
        changed += 1
    return changed


def seed_demo_data(session: Session, now: datetime) -> Dict[str, int]:
    """Add missing demo accounts, bills and outages; returns how many rows were written."""
    if now.tzinfo is None:
        raise ValueError("seed_demo_data needs an aware `now` (e.g. bot.core.clock.utc_now())")
    written = {
        "billing": _seed_accounts(session, to_local(now).date()),
        "outages": _seed_outages(session, now),
    }
    session.flush()
    return written


def seed_default_database(url: Optional[str] = None) -> Dict[str, int]:
    """Seed the configured database (run migrations first)."""
    with session_scope(url) as session:
        return seed_demo_data(session, utc_now())
