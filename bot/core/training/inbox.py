"""The trainer inbox: customer messages the assistant misunderstood or was unsure about.

Collected from Rasa's SQL tracker store (table ``events``; embedded default: the SQLite file
RASA_TRACKER_DB, else var/tracker.db; RASA_TRACKER_URL for any SQLAlchemy URL). A message
goes to the inbox when

* it hit the fallback (``nlu_fallback`` intent, or ``action_fallback`` ran after it);
* its best intent scored below the confidence margin (config/trainer.yml);
* within two customer turns the customer cancelled, asked for a person, or corrected the bot.

Near-identical texts (same letters once width, script, punctuation, digits and emoji are
folded away) are one inbox item with a count, found again by the SHA-256 of that key
(`InboxItem.key_hash`: a key may be as long as the message). The store is read only; a full
scan is cheap next to a training run and makes `sync_inbox` idempotent.

    candidates = collect_candidates(tracker_url())
    with session_scope() as session:
        sync_inbox(session, candidates)
        items = open_items(session)
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from bot.core.normalize import normalize_text
from bot.core.settings import InboxConfig, get_settings
from bot.core.training.models import InboxItem, key_hash

FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTION = "action_fallback"


def inbox_config() -> InboxConfig:
    """The `inbox` section of config/trainer.yml."""
    return get_settings().trainer.inbox


def tracker_url() -> str:
    """SQLAlchemy URL of Rasa's tracker store (opened read-only when it is a SQLite file)."""
    settings = get_settings()
    if settings.rasa_tracker_url:
        return settings.rasa_tracker_url
    return f"sqlite:///file:{settings.tracker_db_path.resolve()}?mode=ro&uri=true"


def text_key(message: str) -> str:
    """The deduplication key: letters only, width/script folded, lower case."""
    folded = normalize_text(message).lower()
    return "".join(c for c in folded if unicodedata.category(c).startswith("L"))


@dataclass
class Turn:
    """One customer message and what happened until the next one."""

    text: str
    intent: Optional[str]
    top_intent: Optional[str]
    confidence: float
    timestamp: float
    sender_id: str
    previous_bot: Optional[str]
    actions: List[str] = field(default_factory=list)


@dataclass
class Candidate:
    """One inbox entry: near-identical messages grouped under `key`."""

    key: str
    text: str
    count: int
    reasons: List[str]
    predicted_intent: Optional[str]
    confidence: float
    context: Dict[str, Any]
    first_seen: dt.datetime
    last_seen: dt.datetime


def _turn(sender_id: str, data: Dict[str, Any], previous_bot: Optional[str]) -> Turn:
    parse = data.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name")
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    top = ranking[0] if ranking else (parse.get("intent") or {})
    return Turn(
        text=data.get("text") or "",
        intent=intent,
        top_intent=top.get("name"),
        confidence=float(top.get("confidence") or 0.0),
        timestamp=float(data.get("timestamp") or 0.0),
        sender_id=sender_id,
        previous_bot=previous_bot,
    )


def read_turns(url: str) -> Dict[str, List[Turn]]:
    """Every conversation's customer turns, in order, from the tracker store's events."""
    engine = create_engine(url, future=True)
    query = text(
        "SELECT sender_id, type_name, action_name, data FROM events "
        "WHERE type_name IN ('user', 'bot', 'action') ORDER BY sender_id, id"
    )
    conversations: Dict[str, List[Turn]] = {}
    last_bot: Dict[str, Optional[str]] = {}
    try:
        with engine.connect() as connection:
            for sender_id, type_name, action_name, raw in connection.execute(query):
                turns = conversations.setdefault(sender_id, [])
                if type_name == "bot":
                    last_bot[sender_id] = (json.loads(raw) or {}).get("text") or last_bot.get(
                        sender_id
                    )
                elif type_name == "action" and turns:
                    turns[-1].actions.append(action_name)
                elif type_name == "user":
                    turns.append(_turn(sender_id, json.loads(raw), last_bot.get(sender_id)))
    finally:
        engine.dispose()
    return conversations


def _reaction(turn: Turn, config: InboxConfig) -> Optional[str]:
    """The reason a message reacting to the bot gives (cancelled, corrected …), if any."""
    if turn.intent in config.reaction_intents:
        return config.reaction_intents[turn.intent]
    stripped = normalize_text(turn.text).strip()
    if any(stripped.startswith(cue) for cue in config.correction_cues):
        return "corrected"
    return None


def reasons_for(turns: Sequence[Turn], index: int, config: InboxConfig) -> List[str]:
    """Why customer turn `index` of one conversation belongs in the inbox (empty: it doesn't)."""
    turn = turns[index]
    reasons = []
    if turn.intent == FALLBACK_INTENT or FALLBACK_ACTION in turn.actions:
        reasons.append("fallback")
    if turn.confidence < config.confidence_margin:
        reasons.append("low_confidence")
    stock_phrase = len(text_key(turn.text)) <= config.not_blamed_max_chars
    if not (stock_phrase and turn.intent in config.not_blamed_intents):
        following = turns[index + 1 : index + 1 + config.reaction_turns]
        reaction = next((r for t in following if (r := _reaction(t, config))), None)
        if reaction:
            reasons.append(reaction)
    return reasons


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).replace(tzinfo=None)


def collect_candidates(url: str, config: Optional[InboxConfig] = None) -> List[Candidate]:
    """Inbox candidates from the tracker store, grouped by `text_key`, most frequent first."""
    config = config or inbox_config()
    groups: Dict[str, List[tuple]] = {}
    for turns in read_turns(url).values():
        for index, turn in enumerate(turns):
            if turn.text.startswith("/"):  # button payloads and intent triggers, not words
                continue
            key = text_key(turn.text)
            reasons = reasons_for(turns, index, config) if key else []
            if reasons:
                following = turns[index + 1].text if index + 1 < len(turns) else None
                groups.setdefault(key, []).append((turn, reasons, following))
    candidates = []
    for key, hits in groups.items():
        first, _, next_user = hits[0]
        intents = Counter(turn.intent for turn, _, _ in hits)
        candidates.append(
            Candidate(
                key=key,
                text=first.text,
                count=len(hits),
                reasons=sorted({r for _, reasons, _ in hits for r in reasons}),
                predicted_intent=intents.most_common(1)[0][0],
                confidence=round(min(turn.confidence for turn, _, _ in hits), 4),
                context={
                    "previous_bot": first.previous_bot,
                    "next_user": next_user,
                    "sender_id": first.sender_id,
                    "variants": sorted({turn.text for turn, _, _ in hits})[:5],
                },
                first_seen=_utc(min(turn.timestamp for turn, _, _ in hits)),
                last_seen=_utc(max(turn.timestamp for turn, _, _ in hits)),
            )
        )
    return sorted(candidates, key=lambda c: (c.count, c.last_seen), reverse=True)


def sync_inbox(session: Session, candidates: Iterable[Candidate]) -> int:
    """Insert new items, refresh counts of known ones (their status stays); returns new ones."""
    added = 0
    for candidate in candidates:
        item = session.execute(
            select(InboxItem).where(InboxItem.key_hash == key_hash(candidate.key))
        ).scalar_one_or_none()
        if item is None:
            item = InboxItem(
                text_key=candidate.key,
                text=candidate.text,
                status="open",
                first_seen=candidate.first_seen,
                context=candidate.context,
            )
            session.add(item)
            added += 1
        item.count = candidate.count
        item.reasons = candidate.reasons
        item.predicted_intent = candidate.predicted_intent
        item.confidence = candidate.confidence
        item.last_seen = candidate.last_seen
    session.flush()
    return added


def open_items(session: Session, limit: int = 200) -> List[InboxItem]:
    """Items waiting for a trainer, the most frequent first."""
    query = (
        select(InboxItem)
        .where(InboxItem.status == "open")
        .order_by(InboxItem.count.desc(), InboxItem.last_seen.desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def item_as_dict(item: InboxItem) -> Dict[str, Any]:
    """One inbox item as JSON for the console."""
    return {
        "id": item.id,
        "text": item.text,
        "count": item.count,
        "reasons": item.reasons,
        "predicted_intent": item.predicted_intent,
        "confidence": item.confidence,
        "context": item.context,
        "status": item.status,
        "last_seen": item.last_seen.isoformat() if item.last_seen else None,
    }
