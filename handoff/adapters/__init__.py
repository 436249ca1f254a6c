"""Where handoffs go: the built-in console (default), Chatwoot or Slack, behind `LiveChatAdapter`.

Adapters are chosen by name and imported lazily, like the stores:
`ADAPTERS = {"console": "module:Class", ...}`.
"""

from __future__ import annotations

import importlib
from typing import Any

from handoff.adapters.base import AgentMessage, LiveChatAdapter
from kefu.errors import ConfigError

ADAPTERS: dict[str, str] = {
    "console": "handoff.adapters.console:ConsoleAdapter",
    "chatwoot": "handoff.adapters.chatwoot:ChatwootAdapter",
    "slack": "handoff.adapters.slack:SlackAdapter",
}

__all__ = ["ADAPTERS", "AgentMessage", "LiveChatAdapter", "adapter_class"]


def adapter_class(name: str) -> Any:
    """The adapter class registered under `name` (ConfigError for an unknown name)."""
    try:
        module, _, cls = ADAPTERS[name].partition(":")
    except KeyError as exc:
        raise ConfigError(f"KEFU_HANDOFF_ADAPTER must be one of {', '.join(ADAPTERS)}, got {name!r}") from exc
    return getattr(importlib.import_module(module), cls)
