"""Bookkeeping of the WeChat channel: one answer per message, and numbered menus.

WeChat waits 5 s for an answer and otherwise sends the same message again (three tries).
`TurnStore` makes sure a message is processed once (keyed by MsgId) and its answer goes out
one way: passively, to WeChat's requests that wait while it is ready (a retry gets the same
reply again), or else once through the customer-service API (`Turn.claim` decides, on the
event loop thread, so there is no race between the two).

WeChat text messages have no buttons, so `render_replies` turns Rasa's buttons into numbered
lines (「回复 1 确认提交」) and `NumberedMenus` maps a customer's "1" back to the payload.
"""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, Generic, List, Optional, Tuple, TypeVar

from bot.core.stores import await_claim, holding_claim, shared_store

Replies = List[Dict[str, Any]]
Value = TypeVar("Value")


class TtlDict(Generic[Value]):
    """A bounded dict whose entries expire `ttl_s` after they were set.

    Hand-written (20 lines) rather than a new dependency: cachetools is not in the lock,
    and the dedup store needs nothing more than this.
    """

    def __init__(
        self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: "OrderedDict[str, Tuple[float, Value]]" = OrderedDict()

    def get(self, key: str) -> Optional[Value]:
        self._expire()
        entry = self._entries.get(key)
        return entry[1] if entry else None

    def set(self, key: str, value: Value) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + self.ttl_s, value)
        self._expire()

    def values(self) -> List[Value]:
        self._expire()
        return [value for _, value in self._entries.values()]

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            key, (expires_at, _) = next(iter(self._entries.items()))
            if expires_at > now and len(self._entries) <= self.max_entries:
                break
            del self._entries[key]


@dataclass
class Turn:
    """One customer message being (or having been) processed."""

    task: "asyncio.Task[Replies]"
    waiters: int = 0  # WeChat requests for this message currently waiting for the answer
    delivered_by: Optional[str] = None  # "passive" or "api", fixed by the first delivery

    def claim(self, way: str) -> Optional[Replies]:
        """The replies if they may go out `way`, else None.

        The API sends an answer once and only if nothing was sent passively. A passive reply
        may be repeated: WeChat retries only when it did not get the previous one in time.
        """
        if not self.task.done() or self.task.cancelled() or self.task.exception():
            return None
        if self.delivered_by == "api" or (way == "api" and self.delivered_by):
            return None
        self.delivered_by = way
        return self.task.result()


@dataclass
class TurnStore:
    """Processes each message once and hands its answer out once."""

    ttl_s: float = 300.0  # well beyond WeChat's three tries 5 s apart
    turns: TtlDict[Turn] = field(init=False)
    background: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.turns = TtlDict(self.ttl_s)

    def has(self, key: str) -> bool:
        """Whether this process already has a turn for `key`."""
        return self.turns.get(key) is not None

    def start(
        self,
        key: str,
        process: Callable[[], Awaitable[Replies]],
        deliver_later: Callable[[Replies], Awaitable[None]],
    ) -> Tuple[Turn, bool]:
        """The turn of `key` (started now unless it already exists) and whether it is new.

        When the answer is ready and no request is waiting for it, `deliver_later` sends it.
        """
        turn = self.turns.get(key)
        if turn is not None:
            return turn, False
        turn = Turn(task=asyncio.ensure_future(process()))
        self.turns.set(key, turn)

        def on_done(_task: "asyncio.Future[Replies]") -> None:
            if turn.waiters:
                return  # a waiting request answers passively
            replies = turn.claim("api")
            if replies:
                self._keep(asyncio.ensure_future(deliver_later(replies)))

        turn.task.add_done_callback(on_done)
        return turn, True

    async def wait(self, turn: Turn, budget_s: float) -> Optional[Replies]:
        """Wait up to `budget_s` for the answer; the replies if this request may send them
        passively (None: answer "success"; the API delivers, or already did)."""
        turn.waiters += 1
        try:
            await asyncio.wait_for(asyncio.shield(turn.task), budget_s)
        except asyncio.TimeoutError:
            pass
        except Exception:  # the failure is logged where the task runs
            pass
        finally:
            turn.waiters -= 1
        return turn.claim("passive")

    def _keep(self, task: "asyncio.Future[None]") -> None:
        """Hold a reference to a background task until it finishes."""
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def drain(self) -> None:
        """Wait for the running turns and deliveries (tests, shutdown)."""
        while True:
            pending = set(self.background) | {
                t.task for t in self.turns.values() if not t.task.done()
            }
            if not pending:
                return
            await asyncio.wait(pending)


@dataclass
class MessageClaims:
    """Messages being answered and answered, in the shared store, so WeChat's retries agree
    across Rasa servers: at least once, never twice at the same time.

    The server that takes a message claims it ("busy", `busy_s`) and refreshes the claim while
    the turn runs, then marks it "done". A retry that reaches another server waits (within the
    reply budget) for it: when it turns "done" the retry answers "success" (the first server
    answers, passively or through the API); when the claim runs out, the first server died in
    mid-turn and this one takes the message over — before, it answered "success" and the
    customer's words were lost with the killed turn."""

    busy_s: float = 6.0  # a dead server's claim is gone before WeChat's next try, 5 s later
    done_s: float = 600.0
    poll_s: float = 0.25

    async def acquire(self, key: str, budget_s: float, here: Callable[[], bool]) -> bool:
        """True when this server is to answer `key`; False when another one does (or did).
        Stops waiting early when `here()` says this process has taken the turn meanwhile."""
        state = await await_claim(f"wx-msg:{key}", self.busy_s, budget_s, self.poll_s, here)
        return state is None

    async def hold(self, key: str, work: Callable[[], Awaitable[Replies]]) -> Replies:
        """Run `work` keeping the claim of `key` alive; "done" afterwards, whatever happened."""
        async with holding_claim(f"wx-msg:{key}", self.busy_s, self.done_s):
            return await work()


def _number_key(text: str) -> str:
    """「１」, " 1 " and "1" all read as "1"."""
    return unicodedata.normalize("NFKC", text).strip()


@dataclass
class NumberedMenus:
    """The numbered choices last shown to each customer (openid → number → payload), in the
    shared store: the customer's "1" may reach another Rasa server than the menu came from."""

    ttl_s: float = 24 * 3600

    def remember(self, user: str, choices: Dict[str, str]) -> None:
        store = shared_store()
        if choices:
            store.put(f"wx-menu:{user}", json.dumps(choices, ensure_ascii=False), self.ttl_s)
        else:
            store.delete(f"wx-menu:{user}")

    def translate(self, user: str, text: str) -> str:
        """The payload of a number from the customer's last menu, else the text itself."""
        stored = shared_store().get(f"wx-menu:{user}")
        choices = json.loads(stored) if stored else {}
        return str(choices.get(_number_key(text), text))


def render_replies(replies: Replies, choice_line: str) -> Tuple[str, Dict[str, str]]:
    """One WeChat text for Rasa's replies, and its number → payload map.

    `choice_line` is the catalog's template, e.g. "回复 {number} {title}".
    """
    parts: List[str] = []
    choices: Dict[str, str] = {}
    lines: List[str] = []
    for reply in replies:
        for key in ("text", "image", "attachment"):
            if reply.get(key):
                parts.append(str(reply[key]))
        for button in reply.get("buttons") or []:
            number = str(len(choices) + 1)
            choices[number] = button.get("payload") or button.get("title", "")
            lines.append(choice_line.format(number=number, title=button.get("title", "")))
    if lines:
        parts.append("\n".join(lines))
    return "\n\n".join(parts), choices
