"""Kefu's custom actions (rasa-sdk), one module per domain. They stay thin: the logic
lives in `knowledge/` and `handoff/`, which know nothing of Rasa."""
