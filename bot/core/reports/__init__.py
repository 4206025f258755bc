"""Branch comparison and the monthly report: figures per branch, department and agent.

figures(session, start, end, "branch")   rows sorted slowest first
daily_trend(session, start, end)         tickets filed and resolved per local day
overdue(session, now)                    open tickets past their due time, most overdue first
"""

from bot.core.reports.figures import (
    GROUPS,
    daily_trend,
    figures,
    local_days,
    month_range,
    overdue,
    percentile,
)

__all__ = [
    "GROUPS",
    "daily_trend",
    "figures",
    "local_days",
    "month_range",
    "overdue",
    "percentile",
]
