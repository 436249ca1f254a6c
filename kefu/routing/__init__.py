"""Smart routing, Rasa-free: who answers a user turn (bot, skill group, general queue, senior
agents, a clarifying question, a callback) and why.

- `settings`: the designers' routing YAML (data/routing.yml), validated and re-read when it changes;
- `hours`: business hours and staffing of one queue;
- `decision`: one explainable decision per turn (`decide`) and its record;
- `turns`: the signals of a turn read from the conversation's events;
- `queues`: what the customer hears for a decision's reason;
- `coverage`: the routing file's intents checked against the dialogue domain;
- `features`: one fixed, named feature row per turn for the learned tree;
- `tree`: the learned tree as plain JSON, walked in pure Python (`treefit` trains it, scikit-learn);
- `router`: the cascade or, when routing.yml selects an approved one, the tree behind guard rails.

Both servers import it: the Rasa server's RoutingPolicy decides, the action server's handoff
and fallback actions act on the decision (handoff.opening writes the ticket).
"""
