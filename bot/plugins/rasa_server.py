"""The Rasa server, with this project's patch points applied first: `python -m bot.plugins.rasa_server run …`
takes exactly `rasa run`'s arguments (the runner uses it instead of `rasa run`).

Patch points (each small, each tested in tests/unit/test_rasa_patches.py):

* **Action responses validated with a validator built once.** Rasa 3.6's
  `RemoteAction._validate_action_result` calls `jsonschema.validate(result, schema)` on every
  action-server answer, which re-checks the schema itself each time: under load that was 54 %
  of the Rasa server's CPU (py-spy). The same JSON schema is checked with a
  `Draft…Validator` built once per schema; a malformed answer is still refused with the same
  `ValidationError`.
* **A tracker store that cannot be reached fails the turn instead of starting over.** Rasa's
  `FailSafeTrackerStore` answers a failed `retrieve` with an empty tracker and keeps a failed
  `save` in process memory: while PostgreSQL restarts, a customer in the middle of a form was
  greeted as new ("请问您要办理什么业务") and what they wrote was lost. Here the error is logged
  and raised, so the channel answers with the 「系统有点忙」 apology (never silence), nothing is
  kept in memory, and the customer's next message continues the form once the store is back.
  Its PostgreSQL connections are checked before use (`pool_pre_ping`), so the first message
  after a database restart does not fail on a connection the restart closed.
* **An action that fails ends the turn and does not count as run.** Rasa 3.6 logs a failed
  action (its action server down, a bug) as executed and goes on predicting from there. A
  form that could not start then looked finished: its "form completed" rule predicted the
  filing, which failed too, and the fallback looped into Rasa's circuit breaker on every later
  message of that customer, for minutes after the action server was back (the soak's apology
  bursts). Here what Rasa logged for the failed action is taken back, the turn ends (the channel
  answers with the 「系统有点忙，请稍等一会儿再发一次」 apology), and the same message, sent
  again, is handled as if the failure never happened.
* **A conversation's lock is kept alive while its turn runs.** Rasa 3.6 gives each turn's
  ticket in the lock store a fixed lifetime (`TICKET_LOCK_LIFETIME`, 15 s here so that a killed
  server's lock does not outlive nginx's 30 s timeout). A turn that waits or runs longer than
  that — one server carrying everything while the other restarts — lost its lock, and a second
  turn of the same customer ran beside it: both saved the tracker and the form's state was
  corrupted (the soak's 「收到。请问您要办理什么业务呢？」 after a phone number, and 「确认提交」 read
  as the phone). Here every ticket is refreshed every third of its lifetime from the moment it
  is issued until the turn ends; only a ticket whose server died runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from functools import lru_cache
from typing import Any, Dict, List, Optional

_PATCHED = False
logger = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _validator_for(schema_key: str) -> Any:
    import json

    from jsonschema.validators import validator_for

    schema = json.loads(schema_key)
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, as jsonschema.validate would on every call
    return cls(schema)


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """`RemoteAction._validate_action_result` with a cached validator (same errors)."""
    import json

    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    validator = _validator_for(json.dumps(self.action_response_format_spec(), sort_keys=True))
    try:
        validator.validate(result)
        return True
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error


class TrackerStoreUnavailable(RuntimeError):
    """The conversation store could not be read or written; the turn is not taken."""


async def _retrieve_or_fail(self: Any, sender_id: str) -> Any:
    try:
        return await self._tracker_store.retrieve(sender_id)
    except Exception as error:
        logger.error("tracker store unavailable (retrieve): %s", type(error).__name__)
        raise TrackerStoreUnavailable(str(error)) from error


async def _retrieve_full_or_fail(self: Any, sender_id: str) -> Any:
    try:
        return await self._tracker_store.retrieve_full_tracker(sender_id)
    except Exception as error:
        logger.error("tracker store unavailable (retrieve_full_tracker): %s", type(error).__name__)
        raise TrackerStoreUnavailable(str(error)) from error


async def _save_or_fail(self: Any, tracker: Any) -> None:
    try:
        await self._tracker_store.save(tracker)
    except Exception as error:
        logger.error("tracker store unavailable (save): %s", type(error).__name__)
        raise TrackerStoreUnavailable(str(error)) from error


_stock_run_action: Any = None


async def _run_action_or_end_turn(
    self: Any, action: Any, tracker: Any, output_channel: Any, nlg: Any, prediction: Any
) -> bool:
    """`MessageProcessor._run_action`, except that an action that raises (other than Rasa's
    own rejection of a form's answer) is reverted and ends the turn (see the module doc)."""
    from rasa.core.actions.action import ActionExecutionRejection

    failed: List[BaseException] = []
    stock_run = action.run

    async def run_noting_failure(*args: Any, **kwargs: Any) -> Any:
        try:
            return await stock_run(*args, **kwargs)
        except ActionExecutionRejection:
            raise
        except Exception as error:
            failed.append(error)
            raise

    action.run = run_noting_failure  # this call only: the instance attribute shadows the method
    events_before = len(tracker.events)
    try:
        predict_another = await _stock_run_action(
            self, action, tracker, output_channel, nlg, prediction
        )
    finally:
        del action.run
    if not failed:
        return bool(predict_another)
    logger.warning(
        "action %s failed (%s): reverted, and the turn ends unanswered (the channel apologises)",
        action.name(),
        type(failed[0]).__name__,
    )
    # Forget what Rasa logged for the failed action (its ActionExecuted); none of it is stored
    # yet. (Rasa's ActionReverted cannot be used: replayed over a form's compressed history it
    # also undoes the form's activation.)
    while len(tracker.events) > events_before:
        tracker.events.pop()
    tracker._reset()
    tracker.replay_events()
    return False


async def _keep_ticket_alive(
    store: Any, conversation_id: str, ticket: int, lifetime_s: float
) -> None:
    """Push the expiry of `ticket` forward every third of its lifetime until cancelled."""
    while True:
        await asyncio.sleep(lifetime_s / 3)
        try:
            lock = store.get_lock(conversation_id)
            if lock is None:
                return
            for held in lock.tickets:
                if held.number == ticket:
                    held.expires = time.time() + lifetime_s
            store.save_lock(lock)
        except Exception:  # the lock store is down: the turn goes on, the ticket may expire
            logger.warning("could not keep the lock of a conversation alive", exc_info=True)


@contextlib.asynccontextmanager
async def _lock_kept_alive(
    self: Any,
    conversation_id: str,
    lock_lifetime: Optional[float] = None,
    wait_time_in_seconds: float = 1,
) -> Any:
    """`LockStore.lock` whose ticket lives as long as the turn (see the module docstring)."""
    from rasa.core.lock_store import LOCK_LIFETIME

    lifetime_s = float(lock_lifetime or LOCK_LIFETIME)
    ticket = self.issue_ticket(conversation_id, lifetime_s)
    keeper = asyncio.ensure_future(_keep_ticket_alive(self, conversation_id, ticket, lifetime_s))
    try:
        yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
    finally:
        keeper.cancel()
        self.cleanup(conversation_id, ticket)


def apply_patches() -> None:
    """Apply every patch point once (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from rasa.core import tracker_store as tracker_store_module
    from rasa.core.actions.action import RemoteAction
    from rasa.core.lock_store import LockStore
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import FailSafeTrackerStore

    global _stock_engine_kwargs, _stock_run_action
    _stock_engine_kwargs = tracker_store_module.create_engine_kwargs
    _stock_run_action = MessageProcessor._run_action
    MessageProcessor._run_action = _run_action_or_end_turn  # type: ignore[method-assign]
    LockStore.lock = _lock_kept_alive  # type: ignore[method-assign,assignment]
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    FailSafeTrackerStore.retrieve = _retrieve_or_fail  # type: ignore[method-assign]
    FailSafeTrackerStore.retrieve_full_tracker = _retrieve_full_or_fail  # type: ignore[method-assign]
    FailSafeTrackerStore.save = _save_or_fail  # type: ignore[method-assign]
    tracker_store_module.create_engine_kwargs = _engine_kwargs_with_pre_ping
    _PATCHED = True


_stock_engine_kwargs: Any = None


def _engine_kwargs_with_pre_ping(url: Any) -> Dict[str, Any]:
    """Rasa's engine options for the SQL tracker store, plus `pool_pre_ping` on PostgreSQL."""
    kwargs = dict(_stock_engine_kwargs(url))
    if kwargs:  # Rasa returns options for PostgreSQL only
        kwargs["pool_pre_ping"] = True
    return kwargs


def main(argv: Optional[List[str]] = None) -> None:
    """`rasa …` with the patches applied (and personal data masked in its logs)."""
    from bot.core.privacy import install_log_masking

    install_log_masking()
    apply_patches()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *(argv if argv is not None else sys.argv[1:])]
    rasa_main()


if __name__ == "__main__":
    main()
