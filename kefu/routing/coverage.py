"""Designer safety: the routing file and the dialogue domain must agree on intent names.

A misspelt intent in data/routing.yml would silently route nothing (its skill group never gets
the turn), so training stops with the file and the intent named. The other way round — a domain
intent no group or routing list mentions — is legal (confident turns go to the bot, the
specialist band to the general queue) but usually an oversight, so it is a warning.
RoutingPolicy.train runs the check with the domain it is trained on.
"""

from __future__ import annotations

from typing import Iterable

from kefu.errors import ConfigError
from kefu.routing.decision import ANGRY_INTENTS, EXPLICIT
from kefu.routing.settings import RoutingConfig

# intents the decision itself routes by name (ask_human, complain → general queue; insult → senior)
ROUTED_BY_CODE = frozenset(EXPLICIT) | ANGRY_INTENTS
EXTERNAL_PREFIX = "EXTERNAL_"  # sent by programs (the console's EXTERNAL_handoff_closed), never routed


def named_intents(config: RoutingConfig) -> dict[str, str]:
    """Every intent the routing file names → where (the first place, for the error message)."""
    where: dict[str, str] = {}
    for intent, group in sorted(config.intent_group.items()):
        where.setdefault(intent, f"the intents of {group}")
    lists = (
        ("conversational_intents", config.conversational_intents),
        ("fallback_intents", config.fallback_intents),
        ("faq_intents", config.faq_intents),
        ("self_service_intents", config.self_service_intents),
        ("topics", frozenset(config.topics)),
        ("intent_thresholds", frozenset(config.targets.intents)),
    )
    for key, names in lists:
        for intent in sorted(names):
            where.setdefault(intent, key)
    return where


def covered_intents(config: RoutingConfig) -> frozenset[str]:
    """Intents some group or routing list (or the decision's own rules) says how to route."""
    lists = (config.conversational_intents, config.fallback_intents, config.faq_intents, config.self_service_intents)
    return frozenset(config.intent_group).union(*lists) | ROUTED_BY_CODE


def check_intents(
    config: RoutingConfig, domain_intents: Iterable[str], source: str, builtin: Iterable[str] = ()
) -> list[str]:
    """Raise ConfigError when `source` (the routing file) names an intent the domain lacks.

    Returns the domain's intents nothing in the routing file covers, for a warning; `builtin`
    (Rasa's default intents such as restart and session_start) and EXTERNAL_ intents are never
    reported.
    """
    known = frozenset(domain_intents)
    unknown = [(intent, where) for intent, where in named_intents(config).items() if intent not in known]
    if unknown:
        listed = ", ".join(f"{intent!r} ({where})" for intent, where in sorted(unknown))
        raise ConfigError(f"{source} names intents the domain does not define: {listed}")
    ignored = covered_intents(config) | frozenset(builtin)
    return sorted(i for i in known if i not in ignored and not i.startswith(EXTERNAL_PREFIX))
