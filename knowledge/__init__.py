"""Kefu's knowledge library (no Rasa imports): orders, and later FAQ, graph, cases and rules."""
