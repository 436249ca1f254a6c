"""Kefu's Rasa plugins: NLU components and channel connectors (Rasa server side only)."""
