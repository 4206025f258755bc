"""Actions whose work blocks (the database, the billing system over HTTP) run in a worker
thread, so one slow call — a 5 s billing timeout — never stalls the other customers this
action server is answering on its event loop."""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict


class BlockingAction(Action):
    """An action written as plain synchronous code (`act`), run off the event loop."""

    @abstractmethod
    def name(self) -> Text:
        """The action's name in the domain."""

    @abstractmethod
    def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """The action's work (database, HTTP): runs in a worker thread."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        return await asyncio.to_thread(self.act, dispatcher, tracker, domain)
