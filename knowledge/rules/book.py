"""A directory of rule files, validated on load and reloaded when a file changes.

The action server keeps one RuleBook; `evaluate()` first checks (at most every
`check_interval` seconds) the files' modification times and sizes, and reloads when they
changed. A broken edit never replaces working rules: the error is logged and kept in
`last_error`, and the previous version stays in force until the file is fixed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import jsonschema
import yaml

from knowledge.errors import NotFound, ValidationFailed
from knowledge.rules.engine import Decision, Process, check_process
from knowledge.rules.schema import RULE_FILE_SCHEMA

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 500_000
_VALIDATOR = jsonschema.Draft7Validator(RULE_FILE_SCHEMA)


def _files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def _snapshot(directory: Path) -> tuple[tuple[str, int, int], ...]:
    stamps = []
    for path in _files(directory):
        try:
            stat = path.stat()
        except OSError:
            continue  # deleted between glob and stat: the next check sees it gone
        stamps.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def read_rules(directory: Union[str, Path]) -> dict[str, Process]:
    """Parse and validate every rule file; ValidationFailed lists each problem with its file and field."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValidationFailed([(str(directory), "not a directory")])
    problems: list[tuple[str, str]] = []
    processes: dict[str, Process] = {}
    files = _files(directory)
    if not files:
        problems.append((str(directory), "no *.yml rule files"))
    for path in files:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                problems.append((path.name, f"file larger than {MAX_FILE_BYTES} bytes"))
                continue
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append((path.name, f"cannot read YAML: {exc}"))
            continue
        errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            for err in errors[:20]:
                where = "/".join(str(p) for p in err.absolute_path) or "(file)"
                problems.append((f"{path.name} {where}", _short(err)))
            continue
        problems.extend((path.name, problem) for problem in check_process(doc))
        name = doc["process"]
        if name in processes:
            problems.append((path.name, f"process {name!r} is also defined in {processes[name].source}"))
            continue
        processes[name] = Process(doc, path.name)
    if problems:
        raise ValidationFailed(problems)
    return processes


def _short(err: jsonschema.ValidationError) -> str:
    if err.validator == "oneOf":  # a bad condition: say what a condition may look like
        return "not a valid condition (use all/any/not, or fact + one of eq, ne, lt, lte, gt, gte, in, not_in, is_set)"
    return err.message if len(err.message) <= 200 else err.message[:200] + "..."


def validate_dir(path: Union[str, Path]) -> None:
    """Raise ValidationFailed unless every rule file in `path` is valid."""
    read_rules(path)


class RuleBook:
    """All processes of a rules directory, hot-reloaded on change."""

    def __init__(self, directory: Path, check_interval: float = 1.0) -> None:
        self.directory = Path(directory)
        self.check_interval = check_interval
        self.last_error: Optional[ValidationFailed] = None
        self._lock = threading.Lock()
        self._processes: dict[str, Process] = {}
        self._stamp: tuple[tuple[str, int, int], ...] = ()
        self._checked_at = 0.0
        self.reloads = 0

    @classmethod
    def from_dir(cls, path: Union[str, Path], check_interval: float = 1.0) -> RuleBook:
        """Load `path` now (ValidationFailed if it is invalid); later changes are picked up by `refresh`."""
        book = cls(Path(path), check_interval)
        stamp = _snapshot(book.directory)
        book._processes = read_rules(book.directory)
        book._stamp = stamp
        book._checked_at = time.monotonic()
        return book

    @property
    def version(self) -> str:
        """Changes whenever the loaded files change (for caches keyed by knowledge version)."""
        return hashlib.sha256(repr(self._stamp).encode()).hexdigest()[:12]

    def refresh(self, force: bool = False) -> bool:
        """Reload if the files changed since the last load; True when a new version is in force."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_interval:
            return False
        with self._lock:
            self._checked_at = now
            stamp = _snapshot(self.directory)
            if stamp == self._stamp and not force:
                return False
            try:
                processes = read_rules(self.directory)
            except ValidationFailed as exc:
                if self.last_error is None or str(exc) != str(self.last_error):
                    log.error("rules in %s not reloaded, keeping the previous version: %s", self.directory, exc)
                self.last_error = exc
                return False
            self._processes, self._stamp, self.last_error = processes, stamp, None
            self.reloads += 1
            log.info("rules reloaded from %s: %s", self.directory, ", ".join(sorted(processes)))
            return True

    def processes(self) -> dict[str, Process]:
        self.refresh()
        return dict(self._processes)

    def get(self, process: str) -> Process:
        self.refresh()
        found = self._processes.get(process)
        if found is None:
            raise NotFound(f"no business process {process!r}; known: {', '.join(sorted(self._processes))}")
        return found

    def evaluate(self, process: str, facts: Mapping[str, Any], language: str = "zh") -> Decision:
        """Decide `process` for `facts` (BadInput on wrong facts, NotFound on an unknown process)."""
        return self.get(process).evaluate(facts, language)
