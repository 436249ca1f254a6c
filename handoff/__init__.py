"""Human handoff (no Rasa imports): which queue a conversation goes to, and why."""
