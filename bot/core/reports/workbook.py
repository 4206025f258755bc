"""The monthly report as an Excel workbook (openpyxl): the branch, department and agent
tables, the daily trend and the overdue list, one sheet each, Chinese headers from the
catalog (labels.reports), frozen header row."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from bot.core.catalog import load_catalog
from bot.core.clock import to_local, to_utc_naive, utc_now
from bot.core.reports.figures import daily_trend, figures, month_range, overdue

FIGURE_COLUMNS = (
    "tickets",
    "resolved",
    "resolved_within_limit_pct",
    "median_first_contact_min",
    "p90_first_contact_min",
    "median_resolution_min",
    "p90_resolution_min",
    "overdue_now",
    "ratings",
    "rating_avg",
    "low_rating_share",
)
TREND_COLUMNS = ("day", "tickets", "resolved")
OVERDUE_COLUMNS = (
    "ticket_no",
    "branch",
    "department",
    "category",
    "status",
    "assignee",
    "created_at",
    "due_at",
    "overdue_hours",
    "address",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def labels() -> Dict[str, str]:
    """The report's Chinese labels (catalog labels.reports)."""
    return dict(load_catalog().labels.get("reports", {}))


def _safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula starts with a quote; local times for dates."""
    if isinstance(value, datetime):
        return to_local(value).replace(tzinfo=None, microsecond=0)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _width(value: Any) -> int:
    text = str(value if value is not None else "")
    # A Chinese character is about two columns wide.
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _sheet(book: Workbook, title: str, headers: Sequence[str], rows: List[Sequence[Any]]) -> None:
    sheet = book.create_sheet(title)
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_safe(value) for value in row])
    sheet.freeze_panes = "A2"
    for index, header in enumerate(headers, start=1):
        widest = max([_width(header)] + [_width(row[index - 1]) for row in rows])
        sheet.column_dimensions[get_column_letter(index)].width = min(max(widest + 2, 8), 60)
        if rows and isinstance(rows[0][index - 1], datetime):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = "yyyy-mm-dd hh:mm"
            sheet.column_dimensions[get_column_letter(index)].width = 18


def build_workbook(
    session: Session,
    start: datetime,
    end: datetime,
    now: Optional[datetime] = None,
) -> Workbook:
    """The report of [start, end) (naive UTC); `now` (naive UTC) decides what is overdue."""
    now = now or to_utc_naive(utc_now())
    text = labels()
    book = Workbook()
    book.remove(book.active)
    figure_headers = [text.get(column, column) for column in FIGURE_COLUMNS]
    for group in ("branch", "department", "agent"):
        rows = figures(session, start, end, group, now=now)
        _sheet(
            book,
            text.get(group, group),
            [text.get(group, group), *figure_headers],
            [[row["name"], *(row[column] for column in FIGURE_COLUMNS)] for row in rows],
        )
    trend = daily_trend(session, start, end)
    _sheet(
        book,
        text.get("daily", "daily"),
        [text.get(column, column) for column in TREND_COLUMNS],
        [[row["day"].isoformat(), row["tickets"], row["resolved"]] for row in trend],
    )
    statuses = load_catalog().statuses
    late = overdue(session, now)
    _sheet(
        book,
        text.get("overdue", "overdue"),
        [text.get(column, column) for column in OVERDUE_COLUMNS],
        [
            [
                statuses.get(row[column], row[column]) if column == "status" else row[column]
                for column in OVERDUE_COLUMNS
            ]
            for row in late
        ],
    )
    return book


def monthly_report(
    session: Session, month: str, now: Optional[datetime] = None
) -> Tuple[Workbook, str]:
    """The workbook of a local month (YYYY-MM) and its file name."""
    start, end = month_range(month)
    return build_workbook(session, start, end, now=now), f"report-{month}.xlsx"


def workbook_bytes(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def save_workbook(book: Workbook, path: Union[str, Path]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    book.save(target)
    return target
