"""Planned and ongoing outages, and which of them affect a customer's address or area.

A real outage feed can replace `OutageService` (same `find` signature) or fill the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional, Tuple

from sqlalchemy import select

from bot.core.clock import to_local, to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.queries.outage_models import PlannedOutage
from bot.core.settings import get_settings

LOOKAHEAD = timedelta(days=14)  # planned outages are announced about a week ahead, some earlier
_MIN_QUERY_CHARS = 2  # "区" alone would match every district


@dataclass(frozen=True)
class OutageNotice:
    """An outage as the bot tells it; times are aware, in local time."""

    district: str
    area: str
    start_at: datetime
    end_at: datetime
    reason: str
    kind: str
    matched_on: str  # "street" (precise) or "district" (same district, maybe elsewhere)

    @property
    def ongoing(self) -> bool:
        return self.kind == "ongoing"


def _related(text: str, name: str) -> bool:
    """Substring either way: 峡山 ~ 峡山街道, 长平路88号 ~ 长平路."""
    return bool(name) and (name in text or (len(text) >= _MIN_QUERY_CHARS and text in name))


def _names_other_district(text: str, district: str) -> bool:
    """True when `text` names a known district (config/areas.yml) other than `district`."""
    known = get_settings().areas.districts
    return any(name in text and not (name in district or district in name) for name in known)


_ROAD = re.compile(r"[\u4e00-\u9fa5]{1,4}?(?:路|大道|街(?!道)|巷)")
_TOWN = re.compile(r"([\u4e00-\u9fa5]{2,3}?)(?:街道|镇)")


def _roads_and_towns(street: str) -> Tuple[List[str], List[str]]:
    """「峡山街道东山路」 → (["东山路"], ["峡山街道", "峡山"]): the parts a customer names."""
    towns: List[str] = []
    rest = street
    town = _TOWN.match(street)
    if town:
        towns = [town.group(0), town.group(1)]
        rest = street[town.end() :]
    return [m.group(0) for m in _ROAD.finditer(rest)], towns


def match_outage(outage: PlannedOutage, text: str) -> Optional[str]:
    """ "street", "district" or None: how `text` (an address, an area or a whole message such
    as 「明天峡山东山路停电吗」) relates to the outage."""
    text = re.sub(r"\s+", "", text or "")
    if len(text) < _MIN_QUERY_CHARS or _names_other_district(text, outage.district):
        return None
    if any(_related(text, street) for street in outage.streets):
        return "street"
    parts = [_roads_and_towns(street) for street in outage.streets]
    if any(road in text for roads, _ in parts for road in roads):
        return "street"
    if _related(text, outage.district) or any(town in text for _, towns in parts for town in towns):
        return "district"
    return None


class OutageService:
    """Outages from the planned_outages table of the application database."""

    def __init__(self, url: Optional[str] = None) -> None:
        self.url = url

    def find(self, address_or_area: str, now: Optional[datetime] = None) -> List[OutageNotice]:
        """Outages affecting the place that are under way or start within two weeks.

        Street matches come first, then ones in the same district; each group by start time.
        """
        now_utc = to_utc_naive(now or utc_now())
        with session_scope(self.url) as session:
            candidates = session.execute(
                select(PlannedOutage)
                .where(PlannedOutage.end_at > now_utc)
                .where(PlannedOutage.start_at <= now_utc + LOOKAHEAD)
                .order_by(PlannedOutage.start_at, PlannedOutage.id)
            ).scalars()
            found: List[Tuple[int, OutageNotice]] = []
            for outage in candidates:
                matched = match_outage(outage, address_or_area)
                if matched:
                    found.append((0 if matched == "street" else 1, _notice(outage, matched)))
        found.sort(key=lambda item: (item[0], item[1].start_at))
        return [notice for _, notice in found]


def _notice(outage: PlannedOutage, matched_on: str) -> OutageNotice:
    return OutageNotice(
        district=outage.district,
        area=outage.area,
        start_at=to_local(outage.start_at),
        end_at=to_local(outage.end_at),
        reason=outage.reason,
        kind=outage.kind,
        matched_on=matched_on,
    )
