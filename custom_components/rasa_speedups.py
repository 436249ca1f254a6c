"""Fixes for Rasa 3.6 hot paths, installed in one place: `custom_components/__init__.py`.

Every Rasa process that loads our model imports `custom_components` (the model's config names
our components by module path), so the fixes are active wherever our components run — the
server, `rasa test`, `rasa shell` — and nowhere else.

Action responses: Rasa 3.6's `RemoteAction._validate_action_result` calls
`jsonschema.validate(result, self.action_response_format_spec())` for every custom-action
response. `validate` re-checks the schema itself and builds a new validator on each call:
~20 ms for a typical FAQ answer, about half of the Rasa server's CPU under load (a Kefu turn
runs two or three custom actions). `validate_action_result` below checks the same schema with
a validator compiled once and raises the same error: `jsonschema.validate` raises
`best_match(validator.iter_errors(instance))`, and so do we, with Rasa's message suffix.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

# Rasa's own implementation, kept for the equivalence tests.
STOCK_VALIDATE: Callable[[RemoteAction, Dict[str, Any]], bool] = RemoteAction._validate_action_result

SUFFIX = (
    ". Failed to validate Action server response from API, "
    "make sure your response from the Action endpoint is valid. "
    f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
)


@functools.lru_cache(maxsize=1)
def _response_validator() -> Any:
    """A validator for Rasa's action-response schema, checked and compiled once per process."""
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    """Drop-in for `RemoteAction._validate_action_result`: same schema, same error."""
    error = best_match(_response_validator().iter_errors(result))
    if error is None:
        return True
    error.message += SUFFIX
    raise error


def install() -> None:
    """Put the fixes in place; idempotent."""
    RemoteAction._validate_action_result = validate_action_result
