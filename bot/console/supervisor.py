"""Supervisor views: per department and per agent — open and overdue tickets, median
first-response and handling times of handovers, ratings — with SVG charts and CSV export.

First response = from the handover to an agent claiming it; handling = from the claim to the
end of the handover. Charts are drawn server-side by matplotlib (already a Rasa dependency)
as SVG with text kept as text, so the browser renders the Chinese labels with its own fonts.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any, Dict, List, Optional, Tuple

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import select

from bot.console.auth import Principal, require_role
from bot.console.templating import render, templates
from bot.core.catalog import load_catalog
from bot.core.clock import to_local, to_utc_naive, utc_now
from bot.core.db import session_scope
from bot.core.handoff.models import Handoff
from bot.core.reports.figures import GROUPS, daily_trend, day_range, figures
from bot.core.reports.workbook import monthly_report, workbook_bytes
from bot.core.staff import ConsoleUser, list_absent, list_agents
from bot.core.tickets.absence import ColleagueAbsent, SameColleague, mark_returned
from bot.core.tickets.absence import mark_absent as record_absence
from bot.core.tickets.escalation import escalated_tickets, open_escalation_count
from bot.core.tickets.models import FINAL_STATUSES, Ticket

SUPERVISOR = require_role("supervisor")
CHARTS = ("department_tickets", "agent_times", "agent_ratings")

router = APIRouter(include_in_schema=False)


def _median(values: List[float]) -> Optional[float]:
    return round(statistics.median(values), 1) if values else None


def _minutes(start: Optional[datetime], end: Optional[datetime]) -> Optional[float]:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 60


def first_contact_overdue(ticket: Ticket, now: datetime) -> bool:
    """A first contact was promised (complaints: 24 h), its time has passed, nobody acted yet."""
    return (
        ticket.first_contact_due_at is not None
        and ticket.first_contacted_at is None
        and ticket.first_contact_due_at < now
        and ticket.status not in FINAL_STATUSES
    )


def department_stats(session: Any, now: Optional[datetime] = None) -> List[Dict[str, Any]]:
    """Per department: open tickets, overdue ones, first contacts overdue, all tickets."""
    now = now or to_utc_naive(utc_now())
    rows: Dict[str, Dict[str, Any]] = defaultdict(
        lambda: {"open": 0, "overdue": 0, "first_contact_overdue": 0, "total": 0}
    )
    for ticket in session.execute(select(Ticket)).scalars():
        row = rows[ticket.department]
        row["total"] += 1
        if ticket.status not in FINAL_STATUSES:
            row["open"] += 1
            if ticket.due_at is not None and ticket.due_at < now:
                row["overdue"] += 1
            if first_contact_overdue(ticket, now):
                row["first_contact_overdue"] += 1
    return [{"department": name, **values} for name, values in sorted(rows.items())]


def agent_stats(session: Any, now: Optional[datetime] = None) -> List[Dict[str, Any]]:
    """Per agent: handovers, median first-response and handling minutes, ratings, tickets."""
    now = now or to_utc_naive(utc_now())
    handoffs: Dict[str, List[Handoff]] = defaultdict(list)
    for handoff in session.execute(select(Handoff).where(Handoff.agent.isnot(None))).scalars():
        handoffs[handoff.agent].append(handoff)
    tickets: Dict[str, List[Ticket]] = defaultdict(list)
    for ticket in session.execute(select(Ticket).where(Ticket.assignee.isnot(None))).scalars():
        tickets[ticket.assignee].append(ticket)
    rows = []
    for agent in sorted(set(handoffs) | set(tickets)):
        own = handoffs[agent]
        first = [m for m in (_minutes(h.created_at, h.claimed_at) for h in own) if m is not None]
        handling = [m for m in (_minutes(h.claimed_at, h.closed_at) for h in own) if m is not None]
        ratings = [h.rating for h in own if h.rating is not None]
        open_tickets = [t for t in tickets[agent] if t.status not in FINAL_STATUSES]
        rows.append(
            {
                "agent": agent,
                "handoffs": len(own),
                "median_first_response_min": _median(first),
                "median_handling_min": _median(handling),
                "ratings": len(ratings),
                "average_rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
                "open_tickets": len(open_tickets),
                "overdue_tickets": sum(1 for t in open_tickets if t.due_at and t.due_at < now),
            }
        )
    return rows


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    return buffer.getvalue()


def chart_svg(name: str, departments: List[Dict[str, Any]], agents: List[Dict[str, Any]]) -> str:
    """One bar chart as SVG text."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    pyplot.rcParams["svg.fonttype"] = "none"  # keep labels as text (Chinese via the browser)
    pyplot.rcParams["font.family"] = ["WenQuanYi Micro Hei", "sans-serif"]
    figure = Figure(figsize=(6, 3))
    axes = figure.subplots()
    if name == "department_tickets":
        labels = [row["department"] for row in departments]
        positions = range(len(labels))
        axes.bar(
            [p - 0.2 for p in positions], [r["open"] for r in departments], 0.4, label="未办结"
        )
        axes.bar(
            [p + 0.2 for p in positions],
            [r["overdue"] for r in departments],
            0.4,
            label="已超时",
            color="#c0392b",
        )
        axes.set_title("各部门未办结 / 超时工单")
    elif name == "agent_times":
        labels = [row["agent"] for row in agents]
        positions = range(len(labels))
        axes.bar(
            [p - 0.2 for p in positions],
            [r["median_first_response_min"] or 0 for r in agents],
            0.4,
            label="首次响应（中位，分钟）",
        )
        axes.bar(
            [p + 0.2 for p in positions],
            [r["median_handling_min"] or 0 for r in agents],
            0.4,
            label="处理时长（中位，分钟）",
            color="#e67e22",
        )
        axes.set_title("坐席响应与处理时长")
    else:
        labels = [row["agent"] for row in agents]
        positions = range(len(labels))
        axes.bar(
            list(positions),
            [r["average_rating"] or 0 for r in agents],
            0.5,
            color="#27ae60",
            label="平均评分",
        )
        axes.set_ylim(0, 5)
        axes.set_title("坐席平均满意度（1–5）")
    axes.set_xticks(list(positions))
    axes.set_xticklabels(labels)
    if labels:
        axes.legend(fontsize="small")
    return _svg(figure)


def _stats(request: Request) -> Dict[str, List[Dict[str, Any]]]:
    with session_scope(request.app.state.settings.database_url) as session:
        return {"departments": department_stats(session), "agents": agent_stats(session)}


RANGES = ("today", "week", "month", "custom")
MAX_RANGE_DAYS = 366
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _day(text: Optional[str]) -> Optional[date]:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def pick_range(
    kind: Optional[str], start: Optional[str], end: Optional[str], today: date
) -> Tuple[str, date, date]:
    """(range kind, first local day, last local day) from the page's query; this month when
    nothing (or nothing valid) is asked for. A custom range is at most a year."""
    if kind == "today":
        return kind, today, today
    if kind == "week":
        return kind, today - timedelta(days=today.weekday()), today
    if kind == "custom":
        first, last = _day(start), _day(end)
        if first and last:
            first, last = min(first, last), max(first, last)
            last = min(last, first + timedelta(days=MAX_RANGE_DAYS - 1))
            return kind, first, last
    return "month", today.replace(day=1), today


def trend_svg(trend: List[Dict[str, Any]], labels: Dict[str, str]) -> Markup:
    """The daily trend as inline SVG: bars of tickets filed, a darker bar of those resolved.
    Drawn here (no chart library, no CDN); empty markup when there is nothing to draw."""
    if not trend or not any(row["tickets"] for row in trend):
        return Markup("")
    width, height, left, bottom, top = 760, 240, 40, 30, 24
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(row["tickets"] for row in trend)
    step = plot_w / len(trend)
    bar = max(step * 0.7, 1.0)
    every = max(1, len(trend) // 15)  # at most ~15 day labels
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" id="trend-chart" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="trend-title">',
        f'<title id="trend-title">{escape(labels.get("trend_title", ""))}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#7b8794"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for index, row in enumerate(trend):
        x = left + index * step + (step - bar) / 2
        # The resolved bar is drawn narrower inside the filed one, so both stay visible.
        for value, colour, kind, inset in (
            (row["tickets"], "#9dc3e6", "tickets", 0.0),
            (row["resolved"], "#0b5394", "resolved", bar / 4),
        ):
            if value:
                h = plot_h * value / peak
                parts.append(
                    f'<rect class="{kind}" x="{x + inset:.1f}" y="{top + plot_h - h:.1f}" '
                    f'width="{bar - 2 * inset:.1f}" height="{h:.1f}" fill="{colour}">'
                    f"<title>{row['day'].isoformat()} {escape(labels.get(kind, kind))} "
                    f"{value}</title></rect>"
                )
        if index % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 12}" text-anchor="middle" '
                f'font-size="11">{row["day"]:%m-%d}</text>'
            )
    for offset, (kind, colour) in enumerate((("tickets", "#9dc3e6"), ("resolved", "#0b5394"))):
        x = left + offset * 110
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 16}" y="14" font-size="12">{escape(labels.get(kind, kind))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _comparison(request: Request) -> Dict[str, Any]:
    """The branch comparison of the range the page asks for."""
    query = request.query_params
    today = to_local(utc_now()).date()
    kind, first, last = pick_range(query.get("range"), query.get("start"), query.get("end"), today)
    start, end = day_range(first, last)
    labels = dict(load_catalog().labels.get("reports", {}))
    with session_scope(request.app.state.settings.database_url) as session:
        tables = {group: figures(session, start, end, group) for group in GROUPS}
        trend = daily_trend(session, start, end)
    return {
        "range": {"kind": kind, "start": first.isoformat(), "end": last.isoformat()},
        "ranges": RANGES,
        "tables": tables,
        "groups": GROUPS,
        "trend_svg": trend_svg(trend, labels),
        "labels": labels,
        "report_month": f"{first:%Y-%m}",
    }


def escalation_count(request: Request) -> int:
    """Open escalated tickets, for the header of supervisors' pages (base.html)."""
    with session_scope(request.app.state.settings.database_url) as session:
        return open_escalation_count(session)


templates.env.globals["escalation_count"] = escalation_count


def escalation_list(request: Request) -> Dict[str, Any]:
    """The 「超时督办」 list of the supervisor page: open escalated tickets and their owners."""
    settings = request.app.state.settings
    catalog = load_catalog()
    with session_scope(settings.database_url) as session:
        names = {u.username: u.display_name for u in session.execute(select(ConsoleUser)).scalars()}
        rows = escalated_tickets(session, utc_now(), settings.service.escalation, names)
        session.expunge_all()  # the rows' tickets are read after the session ends
        staff = [(u.username, u.display_name) for u in list_agents(session, present_only=True)]
    return {
        "escalations": rows,
        "escalation_labels": dict(catalog.labels.get("escalation", {})),
        "category_names": {code: s.name for code, s in catalog.services.items()},
        "absence_labels": dict(catalog.labels.get("absence", {})),
        "staff_choices": staff,
    }


ABSENCE_ROLES = require_role("agent", "supervisor")
MAX_REASON_CHARS = 200


def _absence_target(user: Principal) -> str:
    return "/console/supervisor" if user.has_role("supervisor") else "/console/tickets"


def _absence_subject(username: str, user: Principal) -> str:
    """Whose absence this is: a supervisor names anyone, an agent only themselves (403)."""
    username = username.strip() or user.username
    if username != user.username and not user.has_role("supervisor"):
        raise HTTPException(status_code=403, detail="没有权限访问此页面")
    return username


@router.post("/console/absence")
def mark_absent(
    request: Request,
    username: str = Form(""),
    reason: str = Form(""),
    colleague: str = Form(""),
    user: Principal = Depends(ABSENCE_ROLES),
) -> Response:
    """Someone is absent (an agent themselves, or anyone by a supervisor): the absence is
    recorded on their account, their open tickets and claimed hand-overs go to `colleague`,
    or back to the queues when none is named; each ticket gets a history entry."""
    username = _absence_subject(username, user)
    reason = "".join(c for c in reason if c.isprintable()).strip()[:MAX_REASON_CHARS]
    colleague = colleague.strip()
    if not reason:
        raise HTTPException(status_code=400, detail="请填写原因")
    with session_scope(request.app.state.settings.database_url) as session:
        if username not in {u.username for u in list_agents(session)}:
            raise HTTPException(status_code=400, detail="人员无效")
        try:
            released = record_absence(session, username, user.username, reason, colleague or None)
        except (SameColleague, ColleagueAbsent) as error:
            raise HTTPException(status_code=400, detail="代班同事须是另一位在岗的同事") from error
    counts = f"moved={len(released.tickets)}&handoffs={len(released.handoffs)}"
    return RedirectResponse(f"{_absence_target(user)}?{counts}#absence", status_code=303)


@router.post("/console/absence/return")
def mark_back(
    request: Request, username: str = Form(""), user: Principal = Depends(ABSENCE_ROLES)
) -> Response:
    """Back at work: the absence recorded on the account is cleared (nothing moves back)."""
    username = _absence_subject(username, user)
    with session_scope(request.app.state.settings.database_url) as session:
        if username not in {u.username for u in list_agents(session)}:
            raise HTTPException(status_code=400, detail="人员无效")
        mark_returned(session, username)
    return RedirectResponse(f"{_absence_target(user)}?returned=1#absence", status_code=303)


def absence_table(request: Request) -> Dict[str, Any]:
    """The absence table of the supervisor page: who is absent since when, why, and who covers."""
    with session_scope(request.app.state.settings.database_url) as session:
        names = {u.username: u.display_name for u in session.execute(select(ConsoleUser)).scalars()}
        rows = [
            {
                "username": u.username,
                "name": u.display_name,
                "since": u.absent_since,
                "reason": u.absence_reason,
                "covered_by": u.covered_by,
                "covered_by_name": names.get(u.covered_by or "", u.covered_by),
            }
            for u in list_absent(session)
        ]
    return {"absences": rows}


@router.get("/console/supervisor", response_class=HTMLResponse)
def supervisor_page(request: Request, user: Principal = Depends(SUPERVISOR)) -> HTMLResponse:
    stats = _stats(request)
    # A chart with nothing to draw says 「暂无数据」 instead of drawing empty axes.
    drawn = {
        "department_tickets": bool(stats["departments"]),
        "agent_times": any(
            r["median_first_response_min"] or r["median_handling_min"] for r in stats["agents"]
        ),
        "agent_ratings": any(r["average_rating"] for r in stats["agents"]),
    }
    charts = [(name, drawn[name]) for name in CHARTS]
    context = {
        "user": user,
        **stats,
        "charts": charts,
        **_comparison(request),
        **escalation_list(request),
        **absence_table(request),
    }
    return render(request, "supervisor.html", context)


@router.get("/console/supervisor/report.xlsx")
def report_xlsx(
    request: Request, month: str = "", user: Principal = Depends(SUPERVISOR)
) -> Response:
    month = month or f"{to_local(utc_now()):%Y-%m}"
    try:
        with session_scope(request.app.state.settings.database_url) as session:
            book, name = monthly_report(session, month)
            body = workbook_bytes(book)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from error
    return Response(
        body,
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/console/supervisor/charts/{name}.svg")
def chart(request: Request, name: str, user: Principal = Depends(SUPERVISOR)) -> Response:
    if name not in CHARTS:
        raise HTTPException(status_code=404, detail="没有这个图表")
    stats = _stats(request)
    svg = chart_svg(name, stats["departments"], stats["agents"])
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (=HYPERLINK(…), +cmd…) starts with a
    quote instead (OWASP's advice for CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose text cells cannot become formulas."""

    def __init__(self, buffer: Any) -> None:
        self._writer = csv.writer(buffer)

    def writerow(self, row: List[Any]) -> None:
        self._writer.writerow([spreadsheet_safe(cell) for cell in row])


def to_csv(stats: Dict[str, List[Dict[str, Any]]]) -> str:
    """Both tables in one CSV (a `scope` column tells department rows from agent rows)."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(
        [
            "scope",
            "name",
            "open_tickets",
            "overdue_tickets",
            "total_tickets",
            "handoffs",
            "median_first_response_min",
            "median_handling_min",
            "ratings",
            "average_rating",
        ]
    )
    for row in stats["departments"]:
        writer.writerow(
            [
                "department",
                row["department"],
                row["open"],
                row["overdue"],
                row["total"],
                "",
                "",
                "",
                "",
                "",
            ]
        )
    for row in stats["agents"]:
        writer.writerow(
            [
                "agent",
                row["agent"],
                row["open_tickets"],
                row["overdue_tickets"],
                "",
                row["handoffs"],
                row["median_first_response_min"] or "",
                row["median_handling_min"] or "",
                row["ratings"],
                row["average_rating"] or "",
            ]
        )
    return buffer.getvalue()


@router.get("/console/supervisor/export.csv")
def export_csv(request: Request, user: Principal = Depends(SUPERVISOR)) -> Response:
    # BOM so Excel opens the Chinese names as UTF-8.
    return Response(
        "\ufeff" + to_csv(_stats(request)),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="supervisor-stats.csv"',
            "Cache-Control": "no-store",
        },
    )
