"""Service analytics: load tracker events and tickets, compute metrics, write the report (no Rasa imports)."""
