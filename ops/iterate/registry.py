"""The model registry: one JSON file (`registry.json`) beside the model archives.

Each version records its data hash, metrics on the frozen evaluation set, date, status
(promoted, refused, rolled_back) and the reasons of a refusal; `current` names the model in
service. Writes are atomic (temp file + rename) under an exclusive file lock, so a crashed or
concurrent iteration never leaves a half-written registry.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from kefu.errors import BadInput, NotFound


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / "registry.json"

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"current": None, "versions": [], "log": []}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadInput(f"{self.path} is not valid JSON") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("versions"), list):
            raise BadInput(f"{self.path} is not a Kefu model registry")
        return doc

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            doc = self._read()
            yield doc
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)

    def state(self) -> dict[str, Any]:
        return self._read()

    def current(self) -> Optional[dict[str, Any]]:
        doc = self._read()
        return next((v for v in doc["versions"] if v["version"] == doc["current"]), None)

    def get(self, version: str) -> dict[str, Any]:
        found = next((v for v in self._read()["versions"] if v["version"] == version), None)
        if found is None:
            raise NotFound(f"no model version {version!r} in {self.path}")
        return found

    def find_by_hash(self, data_hash: str) -> Optional[dict[str, Any]]:
        return next((v for v in self._read()["versions"] if v["data_hash"] == data_hash), None)

    def next_version(self) -> str:
        return f"v{len(self._read()['versions']) + 1:04d}"

    def record(self, version: str, *, model: str, data_hash: str, metrics: dict[str, float], status: str,
               reasons: Optional[list[str]] = None, eval_hash: str = "") -> dict[str, Any]:
        """Add a version; status `promoted` also makes it current."""
        entry = {"version": version, "model": model, "data_hash": data_hash, "metrics": metrics, "status": status,
                 "reasons": reasons or [], "eval_hash": eval_hash, "created": time.time()}
        with self._locked() as doc:
            if any(v["version"] == version for v in doc["versions"]):
                raise BadInput(f"model version {version} already exists")
            doc["versions"].append(entry)
            if status == "promoted":
                doc["log"].append({"at": entry["created"], "event": "promote", "version": version,
                                   "previous": doc["current"]})
                doc["current"] = version
            else:
                doc["log"].append({"at": entry["created"], "event": status, "version": version})
        return entry

    def update_metrics(self, version: str, metrics: dict[str, float], eval_hash: str) -> None:
        with self._locked() as doc:
            for v in doc["versions"]:
                if v["version"] == version:
                    v["metrics"], v["eval_hash"] = metrics, eval_hash

    def rollback(self, to: Optional[str] = None,
                 before_commit: Optional[Callable[[dict[str, Any]], None]] = None) -> str:
        """Make the previously promoted model (or `to`) current again; returns the new current version.

        `before_commit(entry)` runs under the lock before the registry is written (e.g. putting the
        archive into service); if it raises, the registry is left as it was."""
        with self._locked() as doc:
            current = doc["current"]
            if current is None:
                raise NotFound("the registry has no current model to roll back")
            promoted = [e["version"] for e in doc["log"] if e["event"] == "promote" and e["version"] != current]
            target = to or (promoted[-1] if promoted else None)
            entry = next((v for v in doc["versions"] if v["version"] == target), None)
            if entry is None or entry["status"] not in ("promoted", "rolled_back") or target == current:
                raise BadInput(f"cannot roll back from {current} to {target!r}: not a previously promoted model")
            if before_commit is not None:
                before_commit(entry)
            for v in doc["versions"]:
                if v["version"] == current:
                    v["status"] = "rolled_back"
                if v["version"] == target:
                    v["status"] = "promoted"
            doc["log"].append({"at": time.time(), "event": "rollback", "version": target, "previous": current})
            doc["current"] = target
            return target
