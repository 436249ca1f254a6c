"""Fixtures of the knowledge-base tests (each engineer keeps theirs in its own module)."""

from tests.knowledge.conftest_graph import *  # noqa: F401,F403
from tests.knowledge.conftest_kb import *  # noqa: F401,F403,E402
