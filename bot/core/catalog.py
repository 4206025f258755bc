"""The business catalog (bot/catalog.yml) as typed, read-only objects.

Everything that differs between businesses — required details, department, priority, time
limit, prompts, documents — is read from here; no other module hard-codes a category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import yaml

from bot.core.settings import get_settings

CONFIRM_SLOT = "confirm_submission"
FAQ_ACTION = "action_answer_faq"


@dataclass(frozen=True)
class Field:
    """A detail the forms collect (one Rasa slot)."""

    name: str
    label: str
    kind: str
    ask: str
    reask: str
    entities: Tuple[str, ...] = ()
    free_text: bool = True
    buttons: Tuple[str, ...] = ()
    cues: Tuple[str, ...] = ()  # words that name this detail in a message
    invalid: Mapping[str, str] = field(default_factory=dict)  # validator reason → what to say


@dataclass(frozen=True)
class Service:
    """A service-request category: one intent, one form, one kind of ticket."""

    code: str
    intent: Optional[str]  # None: filed by the bot itself (call-backs), never asked for
    name: str
    department: str
    priority: str
    required: Tuple[str, ...]
    optional: Tuple[str, ...] = ()
    required_when: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    time_limit: Mapping[str, Any] = field(default_factory=dict)
    materials: Tuple[str, ...] = ()
    files_before_asking: bool = False
    offers_human: bool = False
    hands_over: bool = False
    keywords: Tuple[str, ...] = ()
    visit_address: bool = False  # the address must be precise enough for a visit

    @property
    def form_name(self) -> str:
        return f"{self.code}_form"

    @property
    def confirms(self) -> bool:
        """Whether the customer confirms a summary before filing (not for emergencies,
        which are filed at once and never wait for the customer)."""
        return not self.files_before_asking

    @property
    def all_fields(self) -> Tuple[str, ...]:
        """Every detail this service may collect, in asking order."""
        conditional = tuple(f for f in self.required_when if f not in self.required)
        return self.required + conditional

    def required_fields(self, known: Mapping[str, Any]) -> List[str]:
        """The details still to ask for, given what is already known (conditions applied)."""
        fields = list(self.required)
        for name, condition in self.required_when.items():
            if all(known.get(slot) == value for slot, value in condition.items()):
                fields.append(name)
        return fields


@dataclass(frozen=True)
class JointQuestion:
    """Two details asked in one question while both are missing (「姓名和联系电话」): one
    customer turn fewer. `fields[1]` is the number, cut out of the answer; the rest is the other."""

    fields: Tuple[str, str]
    ask: str

    def partner(self, name: str) -> str:
        return self.fields[1] if name == self.fields[0] else self.fields[0]


@dataclass(frozen=True)
class Query:
    """A query answered in the conversation."""

    code: str
    intent: str
    required: Tuple[str, ...]
    answer_action: str

    @property
    def form_name(self) -> str:
        return f"{self.code}_query_form"


@dataclass(frozen=True)
class Catalog:
    fields: Mapping[str, Field]
    services: Mapping[str, Service]
    queries: Mapping[str, Query]
    faq: Mapping[str, str]
    statuses: Mapping[str, str] = field(default_factory=dict)
    ticket_notifications: Mapping[str, str] = field(default_factory=dict)
    status_transitions: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    system_messages: Mapping[str, str] = field(default_factory=dict)
    conversation_intents: Tuple[str, ...] = ()
    channel_intents: Tuple[str, ...] = ()
    answered_anywhere: Mapping[str, str] = field(default_factory=dict)
    decline_words: Tuple[str, ...] = ()
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    staff_messages: Mapping[str, str] = field(default_factory=dict)
    formats: Mapping[str, str] = field(default_factory=dict)
    dialogue_messages: Mapping[str, str] = field(default_factory=dict)
    ask_together: Tuple[JointQuestion, ...] = ()

    def joint_question(
        self, service: Optional["Service"], asked: str, missing: Iterable[str]
    ) -> Optional[JointQuestion]:
        """The question that asks `asked` together with another required detail of `service`
        that is still `missing`; None for a form that files before asking (emergencies)."""
        if service is None or service.files_before_asking:
            return None
        missing = set(missing)
        for joint in self.ask_together:
            if asked in joint.fields:
                partner = joint.partner(asked)
                if partner in missing and partner in service.all_fields:
                    return joint
        return None

    @property
    def answers(self) -> Dict[str, str]:
        """Intent → the action or response that answers it anywhere (FAQ first)."""
        return {**{intent: FAQ_ACTION for intent in self.faq}, **self.answered_anywhere}

    @property
    def intents(self) -> List[str]:
        """Every intent of the assistant, in the domain's order (services, queries, answers,
        conversation control)."""
        ordered = [
            *self.service_intents,
            *(q.intent for q in self.queries.values()),
            *self.answers,
            *self.conversation_intents,
            *self.channel_intents,
        ]
        return list(dict.fromkeys(ordered))

    @property
    def requestable(self) -> List[Service]:
        """Services a customer asks for (one intent and one form each)."""
        return [s for s in self.services.values() if s.intent]

    def service_for_intent(self, intent: str) -> Optional[Service]:
        return next((s for s in self.requestable if s.intent == intent), None)

    def service_for_form(self, form_name: Optional[str]) -> Optional[Service]:
        return next((s for s in self.requestable if s.form_name == form_name), None)

    def business_for_text(self, text: str) -> Optional[Service]:
        """The service a customer's words name (过户 → transfer), longest keyword wins."""
        if text in self.services:
            return self.services[text]
        lowered = text.lower()  # English keywords (new connection) are written in lower case
        matches = [
            (len(word), service)
            for service in self.requestable
            for word in service.keywords
            if word in lowered
        ]
        return max(matches, key=lambda match: match[0])[1] if matches else None

    @property
    def service_intents(self) -> List[str]:
        return [s.intent for s in self.requestable if s.intent]

    @property
    def forms(self) -> List[str]:
        return [s.form_name for s in self.requestable] + [
            q.form_name for q in self.queries.values()
        ]


def _tuple(value: Any) -> Tuple[str, ...]:
    return tuple(value or ())


def parse_catalog(raw: Mapping[str, Any]) -> Catalog:
    """Build a Catalog from the YAML structure, checking references."""
    fields = {
        name: Field(
            name=name,
            label=spec["label"],
            kind=spec["kind"],
            ask=spec["ask"],
            reask=spec["reask"],
            entities=_tuple(
                spec.get("entities") or ([spec["entity"]] if spec.get("entity") else [])
            ),
            free_text=bool(spec.get("free_text", True)),
            buttons=_tuple(spec.get("buttons")),
            cues=_tuple(spec.get("cues")),
            invalid=spec.get("invalid") or {},
        )
        for name, spec in raw["fields"].items()
    }
    services = {}
    for code, spec in raw["services"].items():
        service = Service(
            code=code,
            intent=spec.get("intent"),
            name=spec["name"],
            department=spec["department"],
            priority=spec["priority"],
            required=_tuple(spec["required"]),
            optional=_tuple(spec.get("optional")),
            required_when=spec.get("required_when") or {},
            time_limit=spec.get("time_limit") or {"kind": "none"},
            materials=_tuple(spec.get("materials")),
            files_before_asking=bool(spec.get("files_before_asking", False)),
            offers_human=bool(spec.get("offers_human", False)),
            hands_over=bool(spec.get("hands_over", False)),
            keywords=_tuple(spec.get("keywords")),
            visit_address=bool(spec.get("visit_address", False)),
        )
        unknown = [f for f in service.all_fields + service.optional if f not in fields]
        if unknown:
            raise ValueError(f"service {code} uses undefined fields {unknown}")
        if service.priority not in PRIORITIES:
            raise ValueError(f"service {code} has unknown priority {service.priority}")
        services[code] = service
    queries = {
        code: Query(
            code=code,
            intent=spec["intent"],
            required=_tuple(spec["required"]),
            answer_action=spec["answer_action"],
        )
        for code, spec in raw.get("queries", {}).items()
    }
    statuses = raw.get("statuses", {})
    notifications = raw.get("ticket_notifications", {})
    for status, template in notifications.items():
        if status not in statuses:
            raise ValueError(f"ticket_notifications names unknown status {status!r}")
        try:
            template.format(**{name: "" for name in NOTIFICATION_PLACEHOLDERS})
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"ticket_notifications.{status}: bad placeholder {error}") from None
    transitions = {
        status: _tuple(targets) for status, targets in (raw.get("status_transitions") or {}).items()
    }
    for status, targets in transitions.items():
        unknown = [name for name in (status, *targets) if name not in statuses]
        if unknown:
            raise ValueError(f"status_transitions names unknown status {unknown[0]!r}")
    return Catalog(
        fields=fields,
        services=services,
        queries=queries,
        faq=raw.get("faq", {}),
        statuses=statuses,
        ticket_notifications=notifications,
        status_transitions=transitions,
        system_messages=raw.get("system_messages", {}),
        conversation_intents=_tuple(raw.get("conversation_intents")),
        channel_intents=_tuple(raw.get("channel_intents")),
        answered_anywhere=raw.get("answered_anywhere") or {},
        decline_words=_tuple(raw.get("decline_words")),
        labels=raw.get("labels") or {},
        staff_messages=raw.get("staff_messages") or {},
        formats=raw.get("formats") or {},
        dialogue_messages=raw.get("dialogue_messages") or {},
        ask_together=_joint_questions(raw.get("ask_together") or [], fields),
    )


def _joint_questions(
    raw: List[Mapping[str, Any]], fields: Mapping[str, Field]
) -> Tuple[JointQuestion, ...]:
    joints = []
    for spec in raw:
        names = tuple(spec["fields"])
        if len(names) != 2 or any(name not in fields for name in names):
            raise ValueError(f"ask_together needs two defined fields, got {list(names)}")
        if fields[names[1]].kind != "phone":
            raise ValueError(f"ask_together {list(names)}: the second detail must be a phone")
        joints.append(JointQuestion(fields=(names[0], names[1]), ask=spec["ask"]))
    return tuple(joints)


PRIORITIES = ("urgent", "high", "normal", "low")
# What a ticket_notifications line may mention.
NOTIFICATION_PLACEHOLDERS = ("ticket_no", "service", "status", "department")


def priority_rank(priority: str) -> int:
    """0 for the most urgent; used to order queues."""
    return PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES)


def load_catalog(path: Optional[Path] = None) -> Catalog:
    """The catalog of this deployment (bot/catalog.yml, or INTAKE_CATALOG), read once per process."""
    return _read_catalog(Path(path or get_settings().catalog_path))


@lru_cache(maxsize=4)
def _read_catalog(path: Path) -> Catalog:
    with path.open(encoding="utf-8") as handle:
        return parse_catalog(yaml.safe_load(handle))
