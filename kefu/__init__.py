"""Kefu's Rasa-free core: configuration, text normalisation, inbound-message checks,
the embedded PostgreSQL helper and the process launcher.

Both the Rasa server (custom_components) and the action server (actions, knowledge)
import this package, so it must never import rasa or rasa_sdk.
"""

__version__ = "0.1.0"
