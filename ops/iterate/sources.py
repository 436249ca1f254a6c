"""More reviewed conversations for `kefu iterate`: misrouted handoffs and approved knowledge-review items.

* Misrouted handoffs (source "misrouted_handoff"): a closed ticket an agent transferred from one
  skill-group queue to another (handoff/tickets.py `transfer` notes "transferred to <queue> by <agent>";
  the opening note names the routed queue) means the bot's intent was wrong. The customer's first
  line is proposed for the final queue's group: its intent when the group has one, else its intents
  as candidates for the designer. Transfers to queues without intents (general, senior) say nothing
  about the intent; a ticket an agent also corrected is left to `collect_corrections`.
* Approved knowledge-review suggestions (source "knowledge_review", `kefu kb review`): the cluster's
  customer questions (representative, alternatives and member tickets; deduplicated, capped) are
  proposed with the FAQ intents of the group named by the published FAQ entry's category as
  candidates, or all FAQ intents when no group matches.

Skill groups and FAQ intents come from the routing file (kefu/routing/settings.py, read only).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import psycopg

from kefu.errors import BadInput, StoreUnavailable
from kefu.routing.settings import load_routing
from ops.iterate.proposals import Proposals, first_customer_line

MAX_KB_EXAMPLES = 8  # per approved suggestion: enough variety without flooding the review
_OPENED = re.compile(r"^ticket opened: queue=(\S+) ")


def _skill_intents(routing: Any) -> dict[str, list[str]]:
    """Skill group → its sorted intents; queues without intents (general, senior) are not skill groups."""
    return {name: sorted(group.intents) for name, group in routing.groups.items() if group.intents}


def _add(proposals: Proposals, text: str, source: str, ref: str, candidates: list[str]) -> Optional[dict[str, Any]]:
    try:
        return proposals.add(text, None, source, ref, candidates=candidates)
    except BadInput:
        return None  # a hostile, oversized or empty line is not proposed


def collect_misroutes(url: str, since: float, proposals: Proposals, routing_file: Path) -> list[dict[str, Any]]:
    """Pending proposals from tickets closed after `since` that agents moved between skill groups."""
    groups = _skill_intents(load_routing(routing_file))
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            if not conn.execute("SELECT to_regclass('handoff_messages') IS NOT NULL").fetchone()[0]:
                return []
            rows = conn.execute(
                """SELECT t.id, t.queue, t.reason_detail->>'queue', t.transcript,
                          (SELECT m.text FROM handoff_messages m WHERE m.ticket_id = t.id AND m.role = 'system'
                              AND m.text LIKE 'ticket opened: %%' ORDER BY m.id LIMIT 1)
                     FROM handoff_tickets t
                    WHERE t.closed_at >= to_timestamp(%s) AND NOT t.reason_detail ? 'corrected_intent'
                      AND EXISTS (SELECT 1 FROM handoff_messages m WHERE m.ticket_id = t.id AND m.role = 'system'
                                     AND m.text LIKE 'transferred to %%')
                    ORDER BY t.closed_at, t.id""",
                (since,),
            ).fetchall()
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot read handoff tickets: {exc}") from exc
    added = []
    for ticket_id, final, routed, transcript, opened in rows:
        match = _OPENED.match(opened or "")
        first_queue = match.group(1) if match else routed
        if first_queue not in groups or final not in groups or final == first_queue:
            continue
        text = first_customer_line(transcript)
        item = _add(proposals, text, "misrouted_handoff", ticket_id, groups[final]) if text else None
        if item is not None:
            added.append(item)
    return added


def faq_candidates(routing: Any, category: Optional[str]) -> list[str]:
    """FAQ intents of the group named `category`, or all FAQ intents when no group matches."""
    group = routing.groups.get(category or "")
    mapped = sorted(group.intents & routing.faq_intents) if group is not None else []
    return mapped or sorted(routing.faq_intents)


def collect_knowledge(kb_url: str, since: float, proposals: Proposals, routing_file: Path) -> list[dict[str, Any]]:
    """Pending proposals from knowledge-review suggestions approved after `since`."""
    routing = load_routing(routing_file)
    if not routing.faq_intents:
        return []
    try:
        with psycopg.connect(kb_url, connect_timeout=10) as conn:
            exists = conn.execute("SELECT to_regclass('kb_suggestion') IS NOT NULL, to_regclass('kb_faq') IS NOT NULL, "
                                  "to_regclass('kb_ticket') IS NOT NULL").fetchone()
            if not exists[0]:
                return []
            category = "(SELECT f.category FROM kb_faq f WHERE f.id = s.faq_id)" if exists[1] else "NULL"
            rows = conn.execute(
                f"""SELECT s.id, s.question, s.alternatives, s.ticket_ids, {category} FROM kb_suggestion s
                     WHERE s.status = 'approved' AND s.reviewed_at >= to_timestamp(%s)
                     ORDER BY s.reviewed_at, s.id""",
                (since,),
            ).fetchall()
            members: dict[str, str] = {}
            ids = sorted({t for row in rows for t in row[3] or []})
            if ids and exists[2]:
                members = dict(conn.execute("SELECT id, question FROM kb_ticket WHERE id = ANY(%s)",
                                            (ids,)).fetchall())
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot read knowledge-review suggestions: {exc}") from exc
    added = []
    for sid, question, alternatives, ticket_ids, cat in rows:
        texts: dict[str, str] = {}
        for text in [question, *(alternatives or []), *(members.get(t, "") for t in ticket_ids or [])]:
            key = " ".join(str(text or "").split()).lower()
            if key and key not in texts:
                texts[key] = text
        candidates = faq_candidates(routing, cat)
        for text in list(texts.values())[:MAX_KB_EXAMPLES]:
            item = _add(proposals, text, "knowledge_review", f"kb_suggestion:{sid}", candidates)
            if item is not None:
                added.append(item)
    return added
