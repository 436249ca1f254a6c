"""Monthly model iteration: collect reviewed conversations, propose NLU examples, train a candidate,
evaluate it against the current model on a frozen set, promote or refuse; a registry with rollback."""
