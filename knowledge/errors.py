"""Knowledge-base errors: every store wraps its driver's exceptions in these (`raise ... from exc`)."""

from kefu.errors import BadInput, KefuError, NotFound, StoreUnavailable

__all__ = ["KnowledgeError", "StoreUnavailable", "BadQuery", "NotFound", "BadInput", "ValidationFailed"]


class KnowledgeError(KefuError):
    """Base class of knowledge-base failures that are not one of the shared kinds below."""


class BadQuery(KnowledgeError):
    """A query was rejected by the store (syntax, parameters, unsupported feature)."""


class ValidationFailed(BadInput):
    """Seed or import content is invalid; `problems` lists (location, message) pairs, e.g. ("faq.yml row 12", ...)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"{where}: {what}" for where, what in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} invalid item(s): {shown}{more}", status=422)
