"""Generate the catalog-driven parts of the assistant from bot/catalog.yml.

`python -m bot catalog generate` writes:
* domain/catalog.yml — every intent, one form per category, the detail slots with their
  mappings, and the `utter_ask_<slot>` prompts;
* data/catalog_rules.yml — for each form: activation, submission, and the digressions that
  answer a question mid-form and resume it (FAQ, cancel, 转人工 …);
* data/nlu/catalog_lookups.yml — lookup tables of the words that name a business, a kind of
  premises or a change of capacity;
* actions/form_validators.py — one `validate_<form>` class per form with a `validate_<slot>`
  method per detail (rasa-sdk's convention), all delegating to actions/forms.py, and one
  `action_ask_<slot>` for each detail asked together with another (`ask_together`) or kept
  in part (a visit address).
`python -m bot catalog check` fails when any of them differs from what the catalog says
(tests/unit/test_catalog.py runs it), so the domain and the catalog cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from bot.core.catalog import CONFIRM_SLOT, Catalog, Query, Service, load_catalog
from bot.core.settings import PROJECT_ROOT

HEADER = "# GENERATED from bot/catalog.yml by `python -m bot catalog generate` — do not edit.\n"
EDIT_DETAIL_INTENT = "edit_detail"
# Intents that never answer a form's question, whatever the catalog adds (rules handle them).
CONTROL_NOT_ANSWERS = ("goodbye", "cancel", "request_human")


@dataclass(frozen=True)
class GeneratedPaths:
    """Where the generated files go (a copy of the project in tests)."""

    root: Path = PROJECT_ROOT

    @property
    def domain(self) -> Path:
        return self.root / "domain" / "catalog.yml"

    @property
    def rules(self) -> Path:
        return self.root / "data" / "catalog_rules.yml"

    @property
    def lookups(self) -> Path:
        return self.root / "data" / "nlu" / "catalog_lookups.yml"

    @property
    def validators(self) -> Path:
        return self.root / "actions" / "form_validators.py"


def not_an_answer(catalog: Catalog) -> List[str]:
    """Intents that are never the answer to a form's question."""
    return [*catalog.answers, *CONTROL_NOT_ANSWERS, *catalog.channel_intents]


def asked_by_action(catalog: Catalog) -> List[str]:
    """Details asked by an `action_ask_<slot>` (actions/forms.py `AskDetail`) instead of their
    `utter_ask_<slot>`: those of a joint question, and addresses (a partial one asks the rest)."""
    joint = {name for question in catalog.ask_together for name in question.fields}
    addresses = {name for name, f in catalog.fields.items() if f.kind == "address"}
    return [name for name in catalog.fields if name in joint | addresses]


def _text_mapping(forms: List[str], slot: str, not_intent: List[str]) -> Dict[str, Any]:
    return {
        "type": "from_text",
        "not_intent": not_intent,
        "conditions": [{"active_loop": form, "requested_slot": slot} for form in forms],
    }


def build_domain(catalog: Catalog) -> Dict[str, Any]:
    """The generated domain part: slots, forms and ask-responses."""
    query_intents = [q.intent for q in catalog.queries.values()]
    forms_using: Dict[str, List[str]] = {name: [] for name in catalog.fields}
    forms: Dict[str, Any] = {}
    for service in catalog.requestable:
        slots = [
            *service.all_fields,
            *service.optional,
            *([CONFIRM_SLOT] if service.confirms else []),
        ]
        forms[service.form_name] = {"required_slots": slots}
        for name in service.all_fields + service.optional:
            forms_using[name].append(service.form_name)
    for query in catalog.queries.values():
        forms[query.form_name] = {"required_slots": list(query.required)}
        for name in query.required:
            forms_using[name].append(query.form_name)

    never_answers = [*not_an_answer(catalog), *query_intents]
    slots: Dict[str, Any] = {}
    responses: Dict[str, Any] = {}
    for name, field in catalog.fields.items():
        mappings: List[Dict[str, Any]] = [
            {"type": "from_entity", "entity": entity} for entity in field.entities
        ]
        if name == "description":
            # The message that starts a report usually is the description (「家里停电了」).
            describing = [s.intent for s in catalog.requestable if name in s.required]
            mappings.append(
                {"type": "from_text", "intent": describing, "conditions": [{"active_loop": None}]}
            )
            not_intent = never_answers
        else:
            not_intent = [*never_answers, *catalog.service_intents]
        if field.free_text:
            # Forms that never block (emergencies) take 「不方便留电话」 as an answer, not a cancel.
            never_block = {s.form_name for s in catalog.requestable if s.files_before_asking}
            blocking = [f for f in forms_using[name] if f not in never_block]
            lenient = [f for f in forms_using[name] if f in never_block]
            if blocking:
                mappings.append(_text_mapping(blocking, name, not_intent))
            if lenient:
                mappings.append(
                    _text_mapping(lenient, name, [i for i in not_intent if i != "cancel"])
                )
        slots[name] = {"type": "text", "influence_conversation": False, "mappings": mappings}
        response: Dict[str, Any] = {"text": field.ask}
        if field.buttons:
            response["buttons"] = [{"title": title, "payload": title} for title in field.buttons]
        responses[f"utter_ask_{name}"] = [response]

    service_forms = [s.form_name for s in catalog.requestable if s.confirms]
    confirm_conditions = [
        {"active_loop": form, "requested_slot": CONFIRM_SLOT} for form in service_forms
    ]
    slots[CONFIRM_SLOT] = {
        "type": "text",
        "influence_conversation": False,
        "mappings": [
            {
                "type": "from_intent",
                "intent": "affirm",
                "value": "yes",
                "conditions": confirm_conditions,
            },
            {
                "type": "from_intent",
                "intent": "deny",
                "value": "edit",
                "conditions": confirm_conditions,
            },
            {
                "type": "from_intent",
                "intent": EDIT_DETAIL_INTENT,
                "value": "edit",
                "conditions": confirm_conditions,
            },
            {"type": "from_text", "not_intent": never_answers, "conditions": confirm_conditions},
        ],
    }
    slots["asked_together"] = {
        "type": "text",
        "influence_conversation": False,
        "mappings": [{"type": "custom"}],  # set by the ask action of a joint question
    }
    return {
        "version": "3.1",
        "intents": [*catalog.intents, EDIT_DETAIL_INTENT],
        "entities": ["detail"],
        "slots": slots,
        "actions": [
            *(f"validate_{form}" for form in forms),
            *(f"action_ask_{name}" for name in asked_by_action(catalog)),
        ],
        "forms": forms,
        "responses": responses,
    }


def _form_digressions(catalog: Catalog, form: str, own_intent: str) -> List[Dict[str, Any]]:
    rules = [
        {
            "rule": f"{form}: answer {intent} and resume",
            "condition": [{"active_loop": form}],
            "steps": [
                {"intent": intent},
                {"action": action},
                {"action": form},
                {"active_loop": form},
            ],
        }
        for intent, action in catalog.answers.items()
    ]
    rules.append(
        {
            "rule": f"{form}: the request said again — carry on",
            "condition": [{"active_loop": form}],
            "steps": [
                {"intent": own_intent},
                {"action": "action_continue_request"},
                {"action": form},
                {"active_loop": form},
            ],
        }
    )
    rules.append(
        {
            "rule": f"{form}: cancel",
            "condition": [{"active_loop": form}],
            "steps": [
                {"intent": "cancel"},
                {"action": "action_cancel_request"},
                {"active_loop": None},
            ],
        }
    )
    rules.append(
        {
            "rule": f"{form}: hand over to a person",
            "condition": [{"active_loop": form}],
            "steps": [
                {"intent": "request_human"},
                {"action": "action_handoff"},
                {"active_loop": None},
            ],
        }
    )
    return rules


def _emergency_keeps_its_form(catalog: Catalog, service: Service) -> List[Dict[str, Any]]:
    """In a form that files before asking (an emergency), another request (「冇时间留电话，
    快啲派人」 read as a fault report) carries the emergency on instead of replacing it."""
    return [
        {
            "rule": f"{service.form_name}: {other.intent} meanwhile — the emergency goes on",
            "condition": [{"active_loop": service.form_name}],
            "steps": [
                {"intent": other.intent},
                {"action": "action_continue_request"},
                {"action": service.form_name},
                {"active_loop": service.form_name},
            ],
        }
        for other in catalog.requestable
        if other.code != service.code
    ]


def build_rules(catalog: Catalog) -> Dict[str, Any]:
    """Activation, submission and digression rules for every form."""
    rules: List[Dict[str, Any]] = []
    for service in catalog.requestable:
        form = service.form_name
        if service.files_before_asking:
            rules.extend(_emergency_keeps_its_form(catalog, service))
        start: List[Dict[str, Any]] = [{"intent": service.intent}]
        if service.files_before_asking:
            start += [{"action": "utter_emergency_safety"}, {"action": "action_file_emergency"}]
        rules.append(
            {
                "rule": f"{service.code}: start",
                "steps": [*start, {"action": form}, {"active_loop": form}],
            }
        )
        submit: List[Dict[str, Any]] = [
            {"action": "action_submit_request"},
            {"slot_was_set": [{"offer_human": service.offers_human}]},
        ]
        if service.hands_over:
            submit += [{"action": "action_handoff"}, {"active_loop": None}]
        rules.append(
            {
                "rule": f"{service.code}: submit",
                "condition": [{"active_loop": form}],
                "steps": [
                    {"action": form},
                    {"active_loop": None},
                    {"slot_was_set": [{"requested_slot": None}]},
                    *submit,
                ],
            }
        )
        rules.extend(_form_digressions(catalog, form, service.intent))
    for query in catalog.queries.values():
        form = query.form_name
        rules.append(
            {
                "rule": f"{query.code} query: start",
                "steps": [{"intent": query.intent}, {"action": form}, {"active_loop": form}],
            }
        )
        rules.append(
            {
                "rule": f"{query.code} query: answer",
                "condition": [{"active_loop": form}],
                "steps": [
                    {"action": form},
                    {"active_loop": None},
                    {"slot_was_set": [{"requested_slot": None}]},
                    {"action": query.answer_action},
                ],
            }
        )
        rules.extend(_form_digressions(catalog, form, query.intent))
    for intent, action in catalog.answers.items():
        rules.append(
            {"rule": f"answer {intent}", "steps": [{"intent": intent}, {"action": action}]}
        )
    return {"version": "3.1", "rules": rules}


def build_lookups(catalog: Catalog) -> Dict[str, Any]:
    """Lookup tables for word-like entities, so RegexEntityExtractor finds them in any message:
    the catalog's business keywords and the words bot/core/normalize.py maps to codes."""
    from bot.core.normalize import (
        AMBIGUOUS_PREMISES_WORDS,
        CUSTOMER_TYPE_WORDS,
        DIRECTION_WORDS,
        SINGLE_CHARACTER_PREMISES,
    )

    business = sorted(
        {w for s in catalog.requestable for w in s.keywords}, key=lambda w: (-len(w), w)
    )
    customer_type = sorted(
        {
            w
            for words in CUSTOMER_TYPE_WORDS.values()
            for w in words
            if len(w) > 1 or w in SINGLE_CHARACTER_PREMISES
        }
        - AMBIGUOUS_PREMISES_WORDS
    )
    direction = sorted({w for _, words in DIRECTION_WORDS for w in words if len(w) > 1})
    return {
        "version": "3.1",
        "nlu": [
            {"lookup": "business", "examples": "".join(f"- {w}\n" for w in business)},
            {"lookup": "customer_type", "examples": "".join(f"- {w}\n" for w in customer_type)},
            {"lookup": "change_direction", "examples": "".join(f"- {w}\n" for w in direction)},
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as YAML blocks, as Rasa's own files write them."""


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


def _dump(data: Dict[str, Any]) -> str:
    return HEADER + yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _class_name(form_name: str) -> str:
    return "Validate" + _camel(form_name)


def _validator_class(entry: Service | Query, fields: List[str], what: str) -> str:
    methods = "".join(
        f"""
    def validate_{name}(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return self.check_detail("{name}", value, tracker)
"""
        for name in fields
    )
    return f"""

class {_class_name(entry.form_name)}(CatalogFormValidator):
    \"\"\"{what}\"\"\"

    entry_code = "{entry.code}"
    entry_kind = "{"service" if isinstance(entry, Service) else "query"}"

    def name(self) -> Text:
        return "validate_{entry.form_name}"
{methods}"""


def build_validators(catalog: Catalog) -> str:
    """Python source of actions/form_validators.py."""
    classes = [
        _validator_class(
            s,
            [*s.all_fields, *s.optional],
            f"{s.name}（{s.code}）: {', '.join([*s.all_fields, *s.optional])}.",
        )
        for s in catalog.requestable
    ] + [
        _validator_class(q, list(q.required), f"查询 {q.code}: {', '.join(q.required)}.")
        for q in catalog.queries.values()
    ]
    asks = [
        f"""

class {_camel(f"action_ask_{name}")}(AskDetail):
    \"\"\"Asks {name}: alone, or with the detail the catalog pairs it with.\"\"\"

    field_name = "{name}"

    def name(self) -> Text:
        return "action_ask_{name}"
"""
        for name in asked_by_action(catalog)
    ]
    return (
        HEADER
        + '"""One validator per form of the catalog: rasa-sdk calls `validate_<slot>` for each detail\n'
        + "the latest message filled; the rules every form shares are in actions/forms.py. Then one\n"
        + "`action_ask_<slot>` per detail asked by an action (joint questions, partial addresses).\n"
        + '"""\n'
        + "from typing import Any, Dict, Text\n\n"
        + "from rasa_sdk import Tracker\n"
        + "from rasa_sdk.executor import CollectingDispatcher\n"
        + "from rasa_sdk.types import DomainDict\n\n"
        + "from actions.forms import AskDetail, CatalogFormValidator\n"
        + "".join(classes)
        + "".join(asks)
    )


def generated_files(
    catalog: Optional[Catalog] = None, paths: GeneratedPaths = GeneratedPaths()
) -> List[Tuple[Path, str]]:
    """(path, content) of every generated file."""
    catalog = catalog or load_catalog()
    return [
        (paths.domain, _dump(build_domain(catalog))),
        (paths.rules, _dump(build_rules(catalog))),
        (paths.lookups, _dump(build_lookups(catalog))),
        (paths.validators, build_validators(catalog)),
    ]


def write_generated(
    catalog: Optional[Catalog] = None, paths: GeneratedPaths = GeneratedPaths()
) -> List[Path]:
    """Write the generated files; returns the ones that changed."""
    changed = []
    for path, content in generated_files(catalog, paths):
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            changed.append(path)
    return changed


def stale_generated(
    catalog: Optional[Catalog] = None, paths: GeneratedPaths = GeneratedPaths()
) -> List[Path]:
    """Generated files that are missing or differ from the catalog."""
    return [
        path
        for path, content in generated_files(catalog, paths)
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]
