"""The routing YAML (thresholds, intent → skill group, automation levels, hours, capacity), validated.

Loaded by both the Rasa server (RoutingPolicy) and the action server; `load_routing` caches
by path and modification time so a designer's edit applies without a restart or retraining,
and a broken edit raises ConfigError naming the key instead of routing silently wrong.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from kefu.errors import ConfigError
from kefu.routing.hours import Hours, Staffing
from kefu.thresholds import Targets, parse_targets

LEVELS = ("assist", "semi-auto", "full-auto")
GENERAL = "general"
SENIOR = "senior"
TOP_KEYS = {
    "version", "auto_threshold", "specialist_threshold", "automation_level", "timezone", "senior", "priorities",
    "conversational_intents", "fallback_intents", "faq_intents", "self_service_intents", "semi_auto_sources",
    "defaults", "groups",
    "queues", "topics", "auto_precision", "specialist_precision", "min_band_support", "intent_thresholds",
    "router", "tree",
}
ROUTERS = ("cascade", "tree")
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Group:
    name: str
    staffing: Staffing
    intents: frozenset[str] = frozenset()
    automation_level: Optional[str] = None


@dataclass(frozen=True)
class Approval:
    """Who approved which tree file (its sha256) and when: a tree routes live only with this."""

    by: str
    at: str
    digest: str


@dataclass(frozen=True)
class TreeSettings:
    file: Optional[str] = None  # relative to the routing file's directory
    approval: Optional[Approval] = None
    # designer pins: node id → a route (every turn reaching that subtree goes there) or "cascade"
    # (the subtree is rejected: the cascade routes those turns)
    pins: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingConfig:
    auto_threshold: float = 0.9
    specialist_threshold: float = 0.7
    automation_level: str = "full-auto"
    senior_frustration: float = 1.0
    senior_sentiment_score: Optional[float] = None  # None: only kefu.emotion's rule (strong, or frustration)
    priorities: Mapping[str, int] = field(default_factory=dict)
    conversational_intents: frozenset[str] = frozenset()
    fallback_intents: frozenset[str] = frozenset({"nlu_fallback", "out_of_scope"})
    faq_intents: frozenset[str] = frozenset()
    self_service_intents: frozenset[str] = frozenset()  # forms that verify details: middling → bot
    semi_auto_sources: frozenset[str] = frozenset({"faq", "graph"})
    groups: Mapping[str, Group] = field(default_factory=dict)  # skill groups and plain queues
    intent_group: Mapping[str, str] = field(default_factory=dict)
    topics: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    default_staffing: Staffing = field(default_factory=Staffing)
    targets: Targets = field(default_factory=Targets)  # precision targets + per-intent overrides
    digest: str = ""
    router: str = "cascade"  # cascade | tree (the tree only once approved, kefu.routing.router)
    tree: TreeSettings = field(default_factory=TreeSettings)

    def group_of(self, intent: Optional[str]) -> Optional[str]:
        return self.intent_group.get(intent or "")

    def level_for(self, group: Optional[str]) -> str:
        found = self.groups.get(group or "")
        return (found.automation_level if found and found.automation_level else None) or self.automation_level

    def staffing(self, queue: str) -> Staffing:
        found = self.groups.get(queue)
        return found.staffing if found else self.default_staffing

    def priority(self, reason: str) -> int:
        return int(self.priorities.get(reason, 0))

    def topic(self, intent: Optional[str], language: str) -> Optional[str]:
        names = self.topics.get(intent or "") or {}
        return names.get(language) or names.get("en")


def _number(raw: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:  # noqa: UP038
        raise ConfigError(f"routing: {key} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _names(raw: Mapping[str, Any], key: str, default: frozenset[str] = frozenset()) -> frozenset[str]:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"routing: {key} must be a list of names")
    return frozenset(value)


def _level(value: Any, where: str) -> str:
    if value not in LEVELS:
        raise ConfigError(f"routing: {where} must be one of {', '.join(LEVELS)}, got {value!r}")
    return str(value)


def _staffing(raw: Mapping[str, Any], base: Staffing, timezone: str, where: str) -> Staffing:
    hours = Hours.parse(raw["hours"], timezone, where + ".hours") if "hours" in raw else base.hours
    values = {}
    for key, low in (("agents", 1), ("max_waiting", 1), ("handle_seconds", 1)):
        value = raw.get(key, getattr(base, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:  # noqa: UP038
            raise ConfigError(f"routing: {where}.{key} must be a number >= {low}, got {value!r}")
        values[key] = value
    return Staffing(hours=hours, agents=int(values["agents"]), max_waiting=int(values["max_waiting"]),
                    handle_seconds=float(values["handle_seconds"]))


PIN_TARGETS = ("bot", "specialist", "human", "senior", "clarify", "cascade")


def _pins(raw: Any) -> dict[int, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or len(raw) > 1000 or not all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 0 and v in PIN_TARGETS for k, v in raw.items()):
        raise ConfigError(f"routing: tree.pins must map node ids to one of {', '.join(PIN_TARGETS)}")
    return dict(raw)


def _tree_settings(raw: Any) -> TreeSettings:
    if raw is None:
        return TreeSettings()
    if not isinstance(raw, Mapping) or set(raw) - {"file", "approval", "pins"}:
        raise ConfigError("routing: tree must be a mapping with file, approval and pins")
    file = raw.get("file")
    if file is not None and (not isinstance(file, str) or not file.strip()):
        raise ConfigError("routing: tree.file must be a path")
    pins = _pins(raw.get("pins"))
    approval = raw.get("approval")
    if approval is None:
        return TreeSettings(file, None, pins)
    if not isinstance(approval, Mapping) or set(approval) != {"by", "at", "digest"} or not all(
            isinstance(approval[k], str) and approval[k] for k in ("by", "at", "digest")):
        raise ConfigError("routing: tree.approval must be {by, at, digest} (written by `kefu routing approve`)")
    return TreeSettings(file, Approval(approval["by"], approval["at"], approval["digest"]), pins)


def parse_routing(raw: Any) -> RoutingConfig:
    """Validate the parsed YAML document and build the config."""
    if not isinstance(raw, Mapping):
        raise ConfigError("routing: the file must be a YAML mapping")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"routing: unknown keys {sorted(unknown)}")
    targets = parse_targets(raw)
    timezone = str(raw.get("timezone", "Asia/Shanghai"))
    senior = raw.get("senior") or {}
    defaults = raw.get("defaults") or {}
    if not isinstance(senior, Mapping) or not isinstance(defaults, Mapping):
        raise ConfigError("routing: senior and defaults must be mappings")
    base = _staffing(defaults, Staffing(hours=Hours.parse(None, timezone, "defaults")), timezone, "defaults")
    groups: dict[str, Group] = {}
    intent_group: dict[str, str] = {}
    for section in ("groups", "queues"):
        entries = raw.get(section) or {}
        if not isinstance(entries, Mapping):
            raise ConfigError(f"routing: {section} must be a mapping of name → settings")
        for name, spec in entries.items():
            spec = spec or {}
            where = f"{section}.{name}"
            if not isinstance(spec, Mapping) or not isinstance(name, str) or not name.isidentifier():
                raise ConfigError(f"routing: {where} must be a mapping under a lower-case name")
            if name in groups:
                raise ConfigError(f"routing: {name} is defined twice")
            extra = set(spec) - {"intents", "automation_level", "hours", "agents", "max_waiting", "handle_seconds"}
            if extra:
                raise ConfigError(f"routing: {where} has unknown keys {sorted(extra)}")
            intents = _names(spec, "intents")
            for intent in intents:
                if intent in intent_group:
                    raise ConfigError(f"routing: intent {intent} is in both {intent_group[intent]} and {name}")
                intent_group[intent] = name
            level = None
            if "automation_level" in spec:
                level = _level(spec["automation_level"], where + ".automation_level")
            groups[name] = Group(name, _staffing(spec, base, timezone, where), intents, level)
    for name in (GENERAL, SENIOR):
        groups.setdefault(name, Group(name, base))
    priorities = raw.get("priorities") or {}
    if not isinstance(priorities, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1000 for v in priorities.values()
    ):
        raise ConfigError("routing: priorities must map reasons to integers in [0, 1000]")
    topics = raw.get("topics") or {}
    if not isinstance(topics, Mapping) or not all(isinstance(v, Mapping) for v in topics.values()):
        raise ConfigError("routing: topics must map intents to {zh: ..., en: ...}")
    digest = hashlib.sha256(yaml.safe_dump(dict(raw), sort_keys=True, allow_unicode=True).encode()).hexdigest()[:12]
    return RoutingConfig(
        auto_threshold=targets.auto_threshold,
        specialist_threshold=targets.specialist_threshold,
        automation_level=_level(raw.get("automation_level", "full-auto"), "automation_level"),
        senior_frustration=_number(senior, "frustration", 1.0, 0.0, 1.0),
        senior_sentiment_score=(
            None if senior.get("sentiment_score") is None else _number(senior, "sentiment_score", -0.6, -1.0, 1.0)
        ),
        priorities=dict(priorities),
        conversational_intents=_names(raw, "conversational_intents"),
        fallback_intents=_names(raw, "fallback_intents", frozenset({"nlu_fallback", "out_of_scope"})),
        faq_intents=_names(raw, "faq_intents"),
        self_service_intents=_names(raw, "self_service_intents"),
        semi_auto_sources=_names(raw, "semi_auto_sources", frozenset({"faq", "graph"})),
        groups=groups,
        intent_group=intent_group,
        topics={k: {str(lang): str(text) for lang, text in v.items()} for k, v in topics.items()},
        default_staffing=base,
        targets=targets,
        digest=digest,
        router=_router(raw.get("router", "cascade")),
        tree=_tree_settings(raw.get("tree")),
    )


def _router(value: Any) -> str:
    if value not in ROUTERS:
        raise ConfigError(f"routing: router must be one of {', '.join(ROUTERS)}, got {value!r}")
    return str(value)


_cache: dict[Path, tuple[float, RoutingConfig]] = {}
_lock = threading.Lock()


def load_routing(path: Path) -> RoutingConfig:
    """Read and validate `path`, cached until the file's modification time changes."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"routing file {path} cannot be read: {exc.strerror}") from exc
    with _lock:
        cached = _cache.get(path)
        if cached and cached[0] == stat.st_mtime:
            return cached[1]
    if stat.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"routing file {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"routing file {path} is not valid YAML: {exc}") from exc
    config = parse_routing(raw)
    with _lock:
        _cache[path] = (stat.st_mtime, config)
    return config
