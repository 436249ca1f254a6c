"""NLU example proposals a designer accepts or rejects (`kefu iterate review`).

Collected from reviewed conversations: handoff tickets an agent corrected in the console
(`reason_detail.corrected_intent`, the customer's first line of the transcript as the example).
Stored in `proposals.json` of the registry; accepted ones are written as Rasa NLU YAML
(`accepted_nlu.yml`) that the next candidate trains on.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional

import yaml

from kefu.errors import BadInput, NotFound, StoreUnavailable

MAX_TEXT = 300
STATUSES = ("pending", "accepted", "rejected")


class Proposals:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / "proposals.json"
        self.nlu_path = self.root / "accepted_nlu.yml"

    def all(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        try:
            items = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadInput(f"{self.path} is not valid JSON") from exc
        if not isinstance(items, list):
            raise BadInput(f"{self.path} is not a proposal list")
        return items

    def _write(self, items: list[dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
        accepted: dict[str, list[str]] = {}
        for item in items:
            if item["status"] == "accepted":
                accepted.setdefault(item["intent"], []).append(item["text"])
        nlu = [{"intent": intent, "examples": "".join(f"- {t}\n" for t in texts)}
               for intent, texts in sorted(accepted.items())]
        self.nlu_path.write_text(yaml.safe_dump({"version": "3.1", "nlu": nlu}, allow_unicode=True, sort_keys=False),
                                 encoding="utf-8")

    def add(self, text: str, intent: str, source: str, ref: str = "") -> Optional[dict[str, Any]]:
        """Add a pending proposal; None when the same (text, intent) was already proposed."""
        text = " ".join(str(text or "").split())[:MAX_TEXT]
        intent = str(intent or "").strip()
        if not text or not intent or not intent.replace("_", "").isalnum() or len(intent) > 64:
            raise BadInput(f"a proposal needs a text and an intent name, got {text[:40]!r} / {intent[:40]!r}")
        items = self.all()
        if any(i["text"].lower() == text.lower() and i["intent"] == intent for i in items):
            return None
        item = {"id": max((i["id"] for i in items), default=0) + 1, "text": text, "intent": intent,
                "source": source, "ref": ref, "status": "pending", "created": time.time()}
        items.append(item)
        self._write(items)
        return item

    def decide(self, ids: list[int], status: str) -> list[dict[str, Any]]:
        if status not in STATUSES[1:]:
            raise BadInput(f"status must be accepted or rejected, got {status!r}")
        items = self.all()
        by_id = {i["id"]: i for i in items}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise NotFound(f"no proposal with id {missing[0]}")
        for i in ids:
            by_id[i]["status"] = status
        self._write(items)
        return [by_id[i] for i in ids]

    def accepted_file(self) -> Optional[Path]:
        return self.nlu_path if any(i["status"] == "accepted" for i in self.all()) else None


def collect_corrections(url: str, since: float, proposals: Proposals) -> list[dict[str, Any]]:
    """Pending proposals from agent-corrected tickets closed after `since` (epoch seconds)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            if not conn.execute("SELECT to_regclass('handoff_tickets') IS NOT NULL").fetchone()[0]:
                return []
            rows = conn.execute(
                "SELECT id, reason_detail->>'corrected_intent', transcript FROM handoff_tickets "
                "WHERE closed_at >= to_timestamp(%s) AND reason_detail ? 'corrected_intent' ORDER BY closed_at",
                (since,),
            ).fetchall()
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot read handoff tickets: {exc}") from exc
    added = []
    for ticket_id, intent, transcript in rows:
        first = next((m.get("text") for m in transcript or [] if isinstance(m, dict) and m.get("role") == "customer"),
                     None)
        if not first or not intent:
            continue
        try:
            item = proposals.add(first, intent, "agent_correction", ticket_id)
        except BadInput:
            continue  # a hostile or empty correction is not proposed
        if item is not None:
            added.append(item)
    return added
