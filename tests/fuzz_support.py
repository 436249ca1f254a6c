"""What the fuzz tests share: hostile JSON strategies, strategies from the console's OpenAPI
description, the response property (no 5xx, every 4xx explains itself), per-endpoint tallies written
to bench/out/fuzz-summary.json, a peak-RSS sampler and the secrets-in-logs check.

schemathesis resolves with the project's pins only as the 2022 release 3.14.2 (and brings two pytest
plugins into the shared venv), so the console fuzzing draws requests from the OpenAPI schemas with
plain hypothesis strategies built here instead.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Optional

import psutil
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from kefu.config import PROJECT_ROOT

OPENAPI = PROJECT_ROOT / "docs" / "console-openapi.yaml"
SUMMARY = PROJECT_ROOT / "bench" / "out" / "fuzz-summary.json"
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# unicode with control characters, surrogates excluded (JSON bodies must encode as UTF-8)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
HOSTILE_TEXT = st.one_of(
    TEXT,
    st.sampled_from(["", " ", "\x00", "\u202e\u200b", "<script>alert(1)</script>", "' OR 1=1 --", "%s%n",
                     "../../etc/passwd", "\ufeff", "😀" * 50, "a" * 5000, "{{7*7}}", "\r\n\r\nX: y"]),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), HOSTILE_TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(HOSTILE_TEXT, kids, max_size=4)), max_leaves=20)


def nested(depth: int) -> str:
    """A JSON text nested `depth` lists deep (json.loads recursion, well under any size limit)."""
    return "[" * depth + "]" * depth


def schema_strategy(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for a JSON (OpenAPI 3.0) schema subset: $ref, enum, object, array, string, integer."""
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return schema_strategy(node, root)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = {k: schema_strategy(v, root) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", []))
        return st.fixed_dictionaries({k: v for k, v in props.items() if k in required},
                                     optional={k: v for k, v in props.items() if k not in required})
    if kind == "array":
        return st.lists(schema_strategy(schema.get("items", {}), root), max_size=4)
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 80), 80))
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=2**62)
    return JSON_VALUES


def body_strategy(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly schema-valid bodies (they reach the handlers' logic), some arbitrary JSON shapes."""
    return st.one_of(schema_strategy(schema, root), schema_strategy(schema, root), JSON_VALUES)


def openapi() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def operations(spec: dict[str, Any], prefix: str = "/api/") -> list[tuple[str, str, Optional[dict[str, Any]]]]:
    """(method, path template, JSON body schema or None) for each operation under `prefix`."""
    out = []
    for path, item in spec["paths"].items():
        if not path.startswith(prefix):
            continue
        for method, op in item.items():
            if method in ("get", "post"):
                content = (op.get("requestBody") or {}).get("content", {})
                out.append((method, path, (content.get("application/json") or {}).get("schema")))
    return out


def clear_message(status: int, body: bytes, content_type: str) -> str:
    """The rejection's message (asserted non-empty); JSON bodies must carry it as detail/reason/message/error."""
    text = body.decode("utf-8", "replace").strip()
    if "json" in content_type:
        data = json.loads(text)
        keys = ("detail", "reason", "message", "error")
        message = next((data[k] for k in keys if data.get(k)), None) if isinstance(data, dict) else None
        return str(message or "")
    return text


class Tally:
    """Requests tried and 5xx seen per endpoint; merged into bench/out/fuzz-summary.json per surface."""

    def __init__(self, surface: str) -> None:
        self.surface = surface
        self.tried: Counter[str] = Counter()
        self.server_errors: Counter[str] = Counter()
        self.statuses: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.failures: list[str] = []
        self.peak_rss_mb: dict[str, float] = {}

    def check(self, endpoint: str, status: int, body: bytes, content_type: str = "") -> Optional[str]:
        """Record one answer; a 5xx or a 4xx without a message is returned (and kept for the summary)."""
        self.tried[endpoint] += 1
        self.statuses[endpoint][str(status)] += 1
        problem = None
        if status >= 500:
            self.server_errors[endpoint] += 1
            problem = f"{endpoint}: {status} {body[:200]!r}"
        elif status >= 400 and not clear_message(status, body, content_type):
            problem = f"{endpoint}: {status} without a message {body[:200]!r}"
        if problem:
            self.failures.append(problem)
        return problem

    def write(self) -> dict[str, Any]:
        SUMMARY.parent.mkdir(parents=True, exist_ok=True)
        try:
            summary = json.loads(SUMMARY.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
        summary[self.surface] = {
            "requests": dict(sorted(self.tried.items())),
            "statuses": {k: dict(v) for k, v in sorted(self.statuses.items())}, "total": sum(self.tried.values()),
            "5xx": dict(self.server_errors), "peak_rss_mb": self.peak_rss_mb, "failures": self.failures[:20],
        }
        SUMMARY.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"\nfuzz {self.surface}: {summary[self.surface]['total']} requests, 5xx {dict(self.server_errors)},"
              f" peak RSS {self.peak_rss_mb} MiB -> {SUMMARY}")
        return summary[self.surface]


class PeakRss:
    """Samples a process tree's resident memory in a thread; `peak_mb` is the highest seen."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        total = 0
        for proc in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._rss())
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def leaked_secrets(logs: Iterable[Path], secrets: Iterable[str]) -> list[str]:
    """Which secret values appear in any of the logs (never print the values themselves)."""
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in logs if p.is_file())
    return [f"secret #{i} ({len(s)} chars) in the logs" for i, s in enumerate(secrets) if s and s in text]
