"""NLU example proposals a designer accepts or rejects (`kefu iterate review`).

Collected from reviewed conversations: handoff tickets an agent corrected in the console
(`reason_detail.corrected_intent`, the customer's first line of the transcript as the example; source
"agent_correction"), plus misrouted handoffs and approved knowledge-review suggestions
(`ops.iterate.sources`). Those two may not know the intent: such a proposal carries `candidates`
and no intent, and the designer picks one when accepting it. Stored in `proposals.json` of the
registry; accepted ones are written as Rasa NLU YAML (`accepted_nlu.yml`) that the next candidate
trains on. Oversized lines and lines with control characters or Rasa entity markup are refused:
a customer must not be able to inject annotations into the training data.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Collection, Optional, Sequence

import psycopg
import yaml

from kefu.errors import BadInput, NotFound, StoreUnavailable

MAX_TEXT = 300
MAX_INTENT = 64
MAX_CANDIDATES = 32
STATUSES = ("pending", "accepted", "rejected")
# control characters, and Rasa's entity annotation `[text](entity)` / `[text]{"entity": ...}`
_HOSTILE = re.compile(r"[\x00-\x1f\x7f]|\[[^\]]*\]\s*[({]")


def clean_text(text: Any) -> str:
    """The example text with whitespace collapsed; BadInput when empty, oversized or hostile."""
    raw = str(text or "")
    if _HOSTILE.search(raw.replace("\n", " ").replace("\t", " ").replace("\r", " ")):
        raise BadInput("a proposal text must not contain control characters or entity markup")
    text = " ".join(raw.split())
    if not text:
        raise BadInput("a proposal needs a text")
    if len(text) > MAX_TEXT:
        raise BadInput(f"a proposal text is longer than {MAX_TEXT} characters")
    return text


def intent_name(intent: Any) -> str:
    """A syntactically valid intent name (letters, digits, underscores; at most MAX_INTENT characters)."""
    name = str(intent or "").strip()
    if not name or not name.replace("_", "").isalnum() or len(name) > MAX_INTENT:
        raise BadInput(f"an intent name is letters, digits and underscores, got {name[:40]!r}")
    return name


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

    def add(self, text: str, intent: Optional[str], source: str, ref: str = "",
            candidates: Optional[Sequence[str]] = None) -> Optional[dict[str, Any]]:
        """Add a pending proposal; None when the same (text, intent) was already proposed.

        Without an intent, `candidates` (the intents it may be) are required; exactly one candidate
        is that intent. BadInput for an empty, oversized or hostile text or a malformed intent name.
        """
        text = clean_text(text)
        names = sorted({intent_name(c) for c in candidates or ()})
        if len(names) > MAX_CANDIDATES:
            raise BadInput(f"at most {MAX_CANDIDATES} candidate intents")
        intent = intent_name(intent) if intent else (names[0] if len(names) == 1 else None)
        if intent is None and not names:
            raise BadInput(f"a proposal needs an intent or candidate intents, got neither for {text[:40]!r}")
        items = self.all()
        if any(i["text"].lower() == text.lower() and i.get("intent") == intent for i in items):
            return None
        item = {"id": max((i["id"] for i in items), default=0) + 1, "text": text, "intent": intent,
                "source": source, "ref": ref, "status": "pending", "created": time.time()}
        if intent is None:
            item["candidates"] = names
        items.append(item)
        self._write(items)
        return item

    def decide(self, ids: list[int], status: str, intent: Optional[str] = None,
               allowed: Optional[Collection[str]] = None) -> list[dict[str, Any]]:
        """Accept or reject proposals; `intent` (one of `allowed`) is the designer's pick when accepting.

        Nothing is written unless every id can take the decision: a proposal without an intent
        cannot be accepted until one is picked.
        """
        if status not in STATUSES[1:]:
            raise BadInput(f"status must be accepted or rejected, got {status!r}")
        if intent is not None:
            if status != "accepted":
                raise BadInput("an intent is only picked when accepting")
            intent = intent_name(intent)
            if allowed is not None and intent not in allowed:
                raise BadInput(f"unknown intent {intent!r}: not in the dialogue domain")
        items = self.all()
        by_id = {i["id"]: i for i in items}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise NotFound(f"no proposal with id {missing[0]}")
        for i in ids:
            chosen = intent or by_id[i].get("intent")
            if status == "accepted" and not chosen:
                raise BadInput(f"proposal #{i} has no intent: accept it with --intent, one of "
                               f"{', '.join(by_id[i].get('candidates') or [])} or another domain intent")
            text = by_id[i]["text"].lower()
            if intent and any(o["id"] != i and o["text"].lower() == text and o.get("intent") == intent
                              for o in items):
                raise BadInput(f"proposal #{i}'s text is already proposed as {intent}")
        for i in ids:
            if intent:
                by_id[i]["intent"] = intent
            by_id[i]["status"] = status
        self._write(items)
        return [by_id[i] for i in ids]

    def accepted_file(self) -> Optional[Path]:
        return self.nlu_path if any(i["status"] == "accepted" for i in self.all()) else None


def collect_corrections(url: str, since: float, proposals: Proposals) -> list[dict[str, Any]]:
    """Pending proposals from agent-corrected tickets closed after `since` (epoch seconds)."""
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
        first = first_customer_line(transcript)
        if not first or not intent:
            continue
        try:
            item = proposals.add(first, intent, "agent_correction", ticket_id)
        except BadInput:
            continue  # a hostile, oversized or empty correction is not proposed
        if item is not None:
            added.append(item)
    return added


def first_customer_line(transcript: Any) -> Optional[str]:
    """The customer's first message in a ticket transcript (the example a proposal is made of)."""
    return next((m.get("text") for m in transcript or [] if isinstance(m, dict) and m.get("role") == "customer"),
                None)
