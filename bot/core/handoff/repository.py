"""The agents' queue: open, order, claim and close handoffs, and record the customer's rating.

Queue order: catalog priority (urgent first, see bot.core.catalog.priority_rank), then arrival.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from bot.core.catalog import PRIORITIES, priority_rank
from bot.core.clock import iso_local, to_utc_naive, utc_now
from bot.core.handoff.models import HANDOFF_STATUSES, OPEN_STATUSES, REASONS, Handoff

_RANK = case(
    {name: rank for rank, name in enumerate(PRIORITIES)},
    value=Handoff.priority,
    else_=len(PRIORITIES),
)
_STATUS_ORDER = case(
    {name: order for order, name in enumerate(HANDOFF_STATUSES)}, value=Handoff.status
)
_QUEUE_ORDER = (_RANK, Handoff.created_at, Handoff.id)


class HandoffNotFound(LookupError):
    """No handoff has this id."""


class HandoffStateError(ValueError):
    """The handoff is not in a state that allows this (e.g. claiming a claimed one)."""


class HandoffRepository:
    """Handoffs stored through one session; the caller owns the transaction."""

    def __init__(self, session: Session, clock: Callable[[], datetime] = utc_now) -> None:
        self.session = session
        self.clock = clock

    def _now(self) -> datetime:
        return to_utc_naive(self.clock())

    def open(
        self,
        conversation_id: str,
        channel: str,
        reason: str,
        priority: str,
        details: Mapping[str, Any],
        ticket_no: Optional[str] = None,
    ) -> Handoff:
        """Queue the conversation for an agent; an already open handoff is returned instead.

        A more urgent request escalates the open handoff (priority and reason).
        """
        if reason not in REASONS:
            raise ValueError(f"unknown handoff reason {reason!r}")
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        handoff = self.current(conversation_id)
        if handoff is None:
            handoff = Handoff(
                conversation_id=conversation_id,
                channel=channel,
                reason=reason,
                status="waiting",
                priority=priority,
                details=dict(details),
                ticket_no=ticket_no,
                created_at=self._now(),
            )
            self.session.add(handoff)
        else:
            if priority_rank(priority) < priority_rank(handoff.priority):
                handoff.priority, handoff.reason = priority, reason
            if ticket_no and not handoff.ticket_no:
                handoff.ticket_no = ticket_no
        self.session.flush()
        return handoff

    def get(self, handoff_id: int) -> Optional[Handoff]:
        return self.session.get(Handoff, handoff_id)

    def current(self, conversation_id: str) -> Optional[Handoff]:
        """The conversation's waiting or active handoff, if any."""
        return self.session.execute(
            select(Handoff)
            .where(Handoff.conversation_id == conversation_id)
            .where(Handoff.status.in_(OPEN_STATUSES))
            .order_by(Handoff.id.desc())
            .limit(1)
        ).scalar_one_or_none()

    def queue_position(self, handoff: Handoff) -> Optional[int]:
        """1-based place among waiting handoffs; None when not waiting."""
        if handoff.status != "waiting":
            return None
        rank = priority_rank(handoff.priority)
        ahead = or_(
            _RANK < rank,
            and_(_RANK == rank, Handoff.created_at < handoff.created_at),
            and_(_RANK == rank, Handoff.created_at == handoff.created_at, Handoff.id < handoff.id),
        )
        count = self.session.execute(
            select(func.count(Handoff.id)).where(Handoff.status == "waiting").where(ahead)
        ).scalar_one()
        return int(count) + 1

    def queue_positions(self) -> Dict[int, int]:
        """{handoff id: queue position} of every waiting handoff (one query)."""
        ids = self.session.execute(
            select(Handoff.id).where(Handoff.status == "waiting").order_by(*_QUEUE_ORDER)
        ).scalars()
        return {handoff_id: position for position, handoff_id in enumerate(ids, start=1)}

    def list(
        self, status: Optional[str] = None, conversation_id: Optional[str] = None, limit: int = 200
    ) -> List[Handoff]:
        """Handoffs: waiting ones in queue order, then active, then closed."""
        query = select(Handoff)
        if status is not None:
            query = query.where(Handoff.status == status)
        if conversation_id is not None:
            query = query.where(Handoff.conversation_id == conversation_id)
        query = query.order_by(_STATUS_ORDER, *_QUEUE_ORDER).limit(max(1, min(limit, 1000)))
        return list(self.session.execute(query).scalars())

    def waiting_since(self, minutes: float) -> List[Handoff]:
        """Waiting handoffs nobody claimed within `minutes` (candidates for a call-back)."""
        cutoff = self._now() - timedelta(minutes=minutes)
        query = (
            select(Handoff)
            .where(Handoff.status == "waiting", Handoff.created_at <= cutoff)
            .order_by(*_QUEUE_ORDER)
        )
        return list(self.session.execute(query).scalars())

    def _move(self, handoff_id: int, from_statuses: Tuple[str, ...], **values: Any) -> Handoff:
        """One conditional UPDATE (`… WHERE status IN from_statuses`): of two concurrent
        transitions only one wins, the other gets HandoffStateError."""
        result = self.session.execute(
            update(Handoff)
            .where(Handoff.id == handoff_id, Handoff.status.in_(from_statuses))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        handoff = self.session.get(Handoff, handoff_id, populate_existing=True)
        if handoff is None:
            raise HandoffNotFound(handoff_id)
        if result.rowcount != 1:
            expected = " or ".join(from_statuses)
            raise HandoffStateError(f"handoff {handoff_id} is {handoff.status}, not {expected}")
        return handoff

    def claim(self, handoff_id: int, agent: str) -> Handoff:
        """An agent takes a waiting conversation (two agents cannot both win)."""
        return self._move(
            handoff_id, ("waiting",), status="active", agent=agent, claimed_at=self._now()
        )

    def _record_move(
        self, handoff: Handoff, from_agent: Optional[str], by: str, why: str
    ) -> Handoff:
        """Append one change of agent to the handoff's `moves` (who moved it, from, to, why)."""
        entry = {
            "at": self._now().isoformat(),
            "by": by,
            "from": from_agent,
            "to": handoff.agent,
            "why": why,
        }
        handoff.moves = [*(handoff.moves or []), entry]
        self.session.flush()
        return handoff

    def transfer(
        self,
        handoff_id: int,
        agent: str,
        from_agent: Optional[str] = None,
        by: Optional[str] = None,
        why: str = "transfer",
    ) -> Handoff:
        """Give an active conversation to another agent (only if `from_agent` still has it);
        recorded in its moves."""
        if from_agent is None:
            moved = self._move(handoff_id, ("active",), agent=agent)
            return self._record_move(moved, None, by or "system", why)
        result = self.session.execute(
            update(Handoff)
            .where(
                Handoff.id == handoff_id, Handoff.status == "active", Handoff.agent == from_agent
            )
            .values(agent=agent)
            .execution_options(synchronize_session=False)
        )
        handoff = self.session.get(Handoff, handoff_id, populate_existing=True)
        if handoff is None:
            raise HandoffNotFound(handoff_id)
        if result.rowcount != 1:
            raise HandoffStateError(f"handoff {handoff_id} is no longer {from_agent}'s")
        return self._record_move(handoff, from_agent, by or from_agent, why)

    def claimed_by(self, agent: str) -> List[int]:
        """Ids of the active handoffs `agent` has claimed, oldest first."""
        return list(
            self.session.execute(
                select(Handoff.id)
                .where(Handoff.status == "active", Handoff.agent == agent)
                .order_by(Handoff.id)
            ).scalars()
        )

    def release(
        self,
        handoff_id: int,
        from_agent: str,
        to_agent: Optional[str] = None,
        by: Optional[str] = None,
        why: str = "absent",
    ) -> Handoff:
        """An absent agent's claimed handoff goes to `to_agent`, or back to the queue (waiting,
        unclaimed) when None; only if `from_agent` still has it (one conditional UPDATE).
        Recorded in its moves."""
        values: Dict[str, Any] = (
            {"agent": to_agent}
            if to_agent
            else {"status": "waiting", "agent": None, "claimed_at": None}
        )
        result = self.session.execute(
            update(Handoff)
            .where(
                Handoff.id == handoff_id, Handoff.status == "active", Handoff.agent == from_agent
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        handoff = self.session.get(Handoff, handoff_id, populate_existing=True)
        if handoff is None:
            raise HandoffNotFound(handoff_id)
        if result.rowcount != 1:
            raise HandoffStateError(f"handoff {handoff_id} is no longer {from_agent}'s")
        return self._record_move(handoff, from_agent, by or "system", why)

    def convert_to_callback(self, handoff_id: int, ticket_no: Optional[str]) -> Handoff:
        """Nobody claimed it in time: record it as a call-back (with its ticket) and close it.

        Only a handoff that is still waiting: one an agent claimed meanwhile is left alone."""
        return self._move(
            handoff_id,
            ("waiting",),
            reason="callback",
            ticket_no=ticket_no,
            status="closed",
            closed_at=self._now(),
        )

    def close(self, handoff_id: int) -> Handoff:
        """End the handover; HandoffStateError when it was already closed (by someone else)."""
        return self._move(handoff_id, OPEN_STATUSES, status="closed", closed_at=self._now())

    def record_rating(self, conversation_id: str, rating: int) -> Optional[Handoff]:
        """Store a 1–5 rating on the conversation's latest closed handoff (None if none)."""
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise ValueError(f"rating must be an integer from 1 to 5, got {rating!r}")
        handoff = self.session.execute(
            select(Handoff)
            .where(Handoff.conversation_id == conversation_id, Handoff.status == "closed")
            .order_by(Handoff.closed_at.desc(), Handoff.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if handoff is not None:
            handoff.rating, handoff.rating_at = rating, self._now()
            self.session.flush()
        return handoff

    def to_dict(
        self, handoff: Handoff, positions: Optional[Mapping[int, int]] = None
    ) -> Dict[str, Any]:
        """The spec §5 JSON shape (plus the id agents act on)."""
        if positions is not None:
            position = positions.get(handoff.id)
        else:
            position = self.queue_position(handoff)
        return {
            "id": handoff.id,
            "conversation_id": handoff.conversation_id,
            "channel": handoff.channel,
            "reason": handoff.reason,
            "status": handoff.status,
            "priority": handoff.priority,
            "queue_position": position,
            "agent": handoff.agent,
            "created_at": iso_local(handoff.created_at),
        }
