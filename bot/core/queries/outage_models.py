"""The table of planned and ongoing outages (demo data, or filled from the outage feed)."""

from __future__ import annotations

import re
from typing import List

from sqlalchemy import CheckConstraint, Column, DateTime, Integer, String, Text

from bot.core.db import Base, sql_in

OUTAGE_KINDS = ("planned", "ongoing")
_STREET_SEPARATORS = re.compile(r"[、,，;；/\s]+")


class PlannedOutage(Base):
    """One outage: where (district + streets/areas), when, and why."""

    __tablename__ = "planned_outages"
    __table_args__ = (CheckConstraint(sql_in("kind", OUTAGE_KINDS), name="kind"),)

    id = Column(Integer, primary_key=True)
    ref = Column(String(64), unique=True)  # id in the source system (or demo-N)
    district = Column(String(32), nullable=False, index=True)
    area = Column(Text, nullable=False)  # streets / villages, separated by 、
    start_at = Column(DateTime, nullable=False)
    end_at = Column(DateTime, nullable=False)  # expected restoration
    reason = Column(Text, nullable=False)
    kind = Column(String(8), nullable=False)

    @property
    def streets(self) -> List[str]:
        return [s for s in _STREET_SEPARATORS.split(self.area or "") if s]
