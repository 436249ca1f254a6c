"""Business rules as YAML processes: JSON-Schema-validated, deterministic, hot-reloaded.

`RuleBook.from_dir(path)` for the action server, `validate_dir(path)` for `kefu kb load`.
"""

from knowledge.rules.book import RuleBook, read_rules, validate_dir
from knowledge.rules.engine import Decision, Process

__all__ = ["RuleBook", "Decision", "Process", "read_rules", "validate_dir"]
