"""Deterministic evaluation of one business process: the first rule whose condition holds
decides, and the decision says which condition that was, in the customer's language."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import jsonschema

from knowledge.errors import BadInput

_SYMBOL = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}
_TEMPLATE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
MAX_STRING_FACT = 200


@dataclass(frozen=True)
class Decision:
    """The outcome of a process for some facts, and why."""

    process: str
    version: int
    outcome: str
    rule: str  # id of the deciding rule, or "default"
    text: str
    steps: list[str]
    because: str  # the deciding condition with the customer's values
    facts: dict[str, Any]
    checked: list[str] = field(default_factory=list)  # rule ids tried before the deciding one


def _show(value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    if isinstance(value, list | tuple):
        return ("、" if lang == "zh" else ", ").join(_show(v, lang) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def conditions(cond: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every leaf condition of `cond` (for the loader's cross-checks)."""
    for key in ("all", "any"):
        if key in cond:
            for child in cond[key]:
                yield from conditions(child)
            return
    if "not" in cond:
        yield from conditions(cond["not"])
        return
    yield cond


class Process:
    """One validated rule file."""

    def __init__(self, doc: Mapping[str, Any], source: str) -> None:
        self.doc = doc
        self.source = source
        self.name: str = doc["process"]
        self.version: int = doc["version"]
        self.inputs: Mapping[str, Any] = doc["inputs"]
        self._facts_validator = jsonschema.Draft7Validator(self.facts_schema())

    def facts_schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for name, spec in self.inputs.items():
            prop = {k: v for k, v in spec.items() if k in ("type", "enum", "minimum", "maximum", "maxLength")}
            if spec["type"] == "string":
                prop.setdefault("maxLength", MAX_STRING_FACT)
            props[name] = prop
        required = [name for name, spec in self.inputs.items() if spec.get("required")]
        return {"type": "object", "additionalProperties": False, "properties": props, "required": required}

    def label(self, fact: str, lang: str) -> str:
        return self.inputs[fact]["label"][lang]

    def value(self, fact: str, value: Any, lang: str) -> str:
        """A fact value as the customer reads it: its `value_labels` entry, else the value itself."""
        if isinstance(value, list | tuple):
            return ("、" if lang == "zh" else ", ").join(self.value(fact, v, lang) for v in value)
        labels = self.inputs.get(fact, {}).get("value_labels") or {}
        found = labels.get(value) if isinstance(value, str) else None
        return found[lang] if found else _show(value, lang)

    def evaluate(self, facts: Mapping[str, Any], lang: str = "zh") -> Decision:
        """First matching rule wins; missing optional facts make their comparisons false."""
        lang = "en" if lang == "en" else "zh"
        if not isinstance(facts, Mapping):
            raise BadInput("facts must be a mapping of name to value")
        clean = {k: v for k, v in facts.items() if v is not None}
        problems = sorted(self._facts_validator.iter_errors(clean), key=lambda e: list(e.path))
        if problems:
            shown = "; ".join(f"{'.'.join(map(str, e.path)) or 'facts'}: {e.message[:120]}" for e in problems[:5])
            raise BadInput(f"bad facts for process {self.name!r}: {shown}")
        checked: list[str] = []
        for rule in self.doc["rules"]:
            if self.holds(rule["when"], clean):
                return self._decision(rule, rule["id"], self.explain(rule["when"], clean, lang), clean, lang, checked)
            checked.append(rule["id"])
        because = "以上规则均不适用" if lang == "zh" else "none of the rules applied"
        return self._decision(self.doc["default"], "default", because, clean, lang, checked)

    def _decision(
        self, rule: Mapping[str, Any], rule_id: str, because: str, facts: dict[str, Any], lang: str, checked: list[str]
    ) -> Decision:
        steps = [self.fill(step, facts, lang) for step in (rule.get("steps") or {}).get(lang, [])]
        return Decision(
            process=self.name,
            version=self.version,
            outcome=rule["outcome"],
            rule=rule_id,
            text=self.fill(rule["say"][lang], facts, lang),
            steps=steps,
            because=because,
            facts=facts,
            checked=checked,
        )

    def fill(self, template: str, facts: Mapping[str, Any], lang: str) -> str:
        """Replace `{fact}` with its value; nothing else is interpreted (no attribute access, no format specs)."""

        def one(match: re.Match) -> str:
            name = match.group(1)
            return self.value(name, facts[name], lang) if name in facts else match.group(0)

        return _TEMPLATE.sub(one, template)

    def holds(self, cond: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
        if "all" in cond:
            return all(self.holds(child, facts) for child in cond["all"])
        if "any" in cond:
            return any(self.holds(child, facts) for child in cond["any"])
        if "not" in cond:
            return not self.holds(cond["not"], facts)
        fact = cond["fact"]
        op = next(key for key in cond if key != "fact")
        ref = cond[op]
        if op == "is_set":
            return (fact in facts) is ref
        if fact not in facts:
            return False
        value = facts[fact]
        if op == "eq":
            return _same(value, ref)
        if op == "ne":
            return not _same(value, ref)
        if op == "in":
            return any(_same(value, item) for item in ref)
        if op == "not_in":
            return not any(_same(value, item) for item in ref)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return {"lt": value < ref, "lte": value <= ref, "gt": value > ref, "gte": value >= ref}[op]

    def explain(self, cond: Mapping[str, Any], facts: Mapping[str, Any], lang: str) -> str:
        """The part of a holding condition that made it hold, with the customer's values."""
        joiner = " 且 " if lang == "zh" else " and "
        if "all" in cond:
            return joiner.join(self.explain(child, facts, lang) for child in cond["all"])
        if "any" in cond:
            child = next(c for c in cond["any"] if self.holds(c, facts))
            return self.explain(child, facts, lang)
        if "not" in cond:
            inner = self.describe(cond["not"], facts, lang)
            return f"并非（{inner}）" if lang == "zh" else f"not ({inner})"
        return self.describe(cond, facts, lang)

    def describe(self, cond: Mapping[str, Any], facts: Mapping[str, Any], lang: str) -> str:
        """A condition as text, e.g. `签收天数（12）> 7` or `category (fresh_food) in fresh_food, custom`."""
        if "all" in cond or "any" in cond:
            key = "all" if "all" in cond else "any"
            word = {"all": (" 且 ", " and "), "any": (" 或 ", " or ")}[key][lang == "en"]
            return "（" + word.join(self.describe(c, facts, lang) for c in cond[key]) + "）"
        if "not" in cond:
            inner = self.describe(cond["not"], facts, lang)
            return f"并非{inner}" if lang == "zh" else f"not {inner}"
        fact = cond["fact"]
        op = next(key for key in cond if key != "fact")
        label = self.label(fact, lang)
        if op == "is_set":
            known = cond[op]
            if lang == "zh":
                return f"{label}{'已知' if known else '未知'}"
            return f"{label} is {'known' if known else 'unknown'}"
        shown = self.value(fact, facts[fact], lang) if fact in facts else ("未知" if lang == "zh" else "unknown")
        if op == "eq" and isinstance(cond[op], bool) and facts.get(fact) is cond[op]:
            return f"{label}：{shown}" if lang == "zh" else f"{label}: {shown}"  # "已拆封：是", not "已拆封（是） = 是"
        value = f"{label}（{shown}）" if lang == "zh" else f"{label} ({shown})"
        if op in ("in", "not_in"):
            word = {"in": ("属于", "is one of"), "not_in": ("不属于", "is not one of")}[op][lang == "en"]
            return f"{value} {word} {self.value(fact, cond[op], lang)}"
        return f"{value} {_SYMBOL[op]} {self.value(fact, cond[op], lang)}"


def check_process(doc: Mapping[str, Any]) -> list[str]:
    """Cross-checks the schema cannot express: facts declared, ids unique, types match, templates known."""
    problems: list[str] = []
    inputs = doc["inputs"]
    seen: set[str] = set()
    decisions = [*doc["rules"], doc["default"]]
    for fact, spec in inputs.items():
        unknown = [key for key in spec.get("value_labels") or {} if "enum" in spec and key not in spec["enum"]]
        if unknown:
            problems.append(f"inputs.{fact}.value_labels: {', '.join(map(repr, unknown))} not in enum")
    for number, rule in enumerate(doc["rules"], 1):
        where = f"rules[{number}] ({rule['id']})"
        if rule["id"] in seen:
            problems.append(f"{where}: duplicate rule id")
        seen.add(rule["id"])
        for leaf in conditions(rule["when"]):
            fact = leaf["fact"]
            if fact not in inputs:
                problems.append(f"{where}: condition on undeclared fact {fact!r}")
                continue
            op = next(key for key in leaf if key != "fact")
            kind = inputs[fact]["type"]
            if op in ("lt", "lte", "gt", "gte") and kind not in ("integer", "number"):
                problems.append(f"{where}: {op} needs a number fact, {fact!r} is {kind}")
            refs = leaf[op] if op in ("in", "not_in") else [leaf[op]] if op in ("eq", "ne") else []
            for ref in refs:
                if not _matches(ref, kind):
                    problems.append(f"{where}: {fact!r} is {kind} but the condition compares it with {ref!r}")
    for number, rule in enumerate(decisions, 1):
        texts = [
            rule["say"]["zh"],
            rule["say"]["en"],
            *[s for lang in ("zh", "en") for s in (rule.get("steps") or {}).get(lang, [])],
        ]
        for text in texts:
            for name in _TEMPLATE.findall(text):
                if name not in inputs:
                    where = "default" if number == len(decisions) else f"rules[{number}]"
                    problems.append(f"{where}: template names undeclared fact {{{name}}}")
    return problems


def _same(value: Any, ref: Any) -> bool:
    """Equality that never confuses True with 1."""
    return isinstance(value, bool) == isinstance(ref, bool) and value == ref


def _matches(value: Any, kind: str) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)
