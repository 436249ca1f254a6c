"""Turning ticket clusters into FAQ suggestions, and the human review that publishes them."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any, Callable, Optional

from kefu.config import Settings
from knowledge.cases import open_case_store
from knowledge.cluster import DEFAULT_EPS, DEFAULT_MIN_SAMPLES, cluster, strip_greeting
from knowledge.errors import BadInput, ValidationFailed
from knowledge.faq import open_faq_store, parse_entry
from knowledge.ticket_store import TicketStore

# Tickets count as answered only when the FAQ is clearly sure: new topics often get a mid-confidence
# near miss (an Apple Pay question matching the card FAQ), and those must reach the clustering.
ANSWERED_ABOVE = 0.7
CASE_ANSWER_MIN = 0.7  # a case resolution is only suggested when the case is clearly about the same thing
MAX_ALTERNATIVES = 5


def suggest(store: TicketStore, settings: Settings, *, eps: Optional[float] = None,
            min_samples: Optional[int] = None, answered_above: Optional[float] = None,
            faq: Any = None, cases: Any = None) -> str:
    """Cluster the tickets the FAQ cannot answer; store pending suggestions; return a printable report."""
    eps = DEFAULT_EPS if eps is None else eps
    min_samples = DEFAULT_MIN_SAMPLES if min_samples is None else min_samples
    answered_above = ANSWERED_ABOVE if answered_above is None else answered_above
    if not 0.0 < eps < 1.0 or min_samples < 2 or not 0.0 <= answered_above <= 1.0:
        raise BadInput("need 0 < eps < 1, min_samples ≥ 2 and 0 ≤ answered_above ≤ 1")
    own = faq is None
    faq = faq or open_faq_store(settings.faq_url)
    cases = cases or open_case_store(settings.cases_url or settings.faq_url)
    try:
        tickets = store.tickets()
        faq.embedder.prime([t.question for t in tickets])
        unanswered = []
        for t in tickets:
            best = faq.search(t.question, t.language, limit=1)
            # The raw score, on which 0.7 and the clustering parameters were chosen: the calibrated
            # decision leaves more tickets unanswered and DBSCAN then chains topics (issue 18 note).
            if not best or best[0].raw_confidence < answered_above:
                unanswered.append(t)
        params = {"algorithm": "DBSCAN", "metric": "cosine", "eps": eps, "min_samples": min_samples,
                  "answered_above": answered_above, "encoder": faq.embedder.fingerprint}
        suggestions = []
        for language in ("zh", "en"):
            group_tickets = [t for t in unanswered if t.language == language]
            texts = [strip_greeting(t.question) for t in group_tickets]
            vectors = faq.embedder.embed(texts) if group_tickets else None
            for g in cluster(vectors, eps, min_samples) if vectors is not None else []:
                members = [group_tickets[i] for i in g.members]
                rep = texts[g.representative]
                answer, source = _answer_for(rep, language, members, cases)
                others = [texts[i] for i in g.members if texts[i] != rep]
                suggestions.append({
                    "language": language, "question": rep, "alternatives": list(dict.fromkeys(others))[
                        :MAX_ALTERNATIVES], "answer": answer, "answer_source": source,
                    "ticket_ids": [m.id for m in members], "size": len(members), "cohesion": g.mean_similarity,
                    "params": params,
                })
        ids = store.replace_pending(suggestions)
    finally:
        if own:
            faq.close()
            cases.close()
    grouped = sum(s["size"] for s in suggestions)
    lines = [
        "clustering parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()),
        f"tickets: {len(tickets)}; answered by the FAQ (confidence ≥ {answered_above}): "
        f"{len(tickets) - len(unanswered)}; unanswered: {len(unanswered)}; "
        f"in groups: {grouped}; noise: {len(unanswered) - grouped}",
    ]
    for sid, s in zip(ids, suggestions, strict=True):
        lines.append(f"\n#{sid} [{s['language']}] {s['size']} tickets, cohesion {s['cohesion']:.3f}: {s['question']}")
        lines.extend(f"    also: {alt}" for alt in s["alternatives"][:3])
        lines.append(f"    suggested answer ({s['answer_source']}): {s['answer'][:160]}")
    if not suggestions:
        lines.append("no groups of similar unanswered questions")
    return "\n".join(lines)


def _answer_for(question: str, language: str, members: list, cases: Any) -> tuple[str, str]:
    """The closest case's resolution when it is clearly the same problem, else the agents' most common reply."""
    hits = cases.search(question, language, limit=1)
    if hits and hits[0].confidence >= CASE_ANSWER_MIN:
        return hits[0].case.resolution, f"case {hits[0].case.id}"
    replies = Counter(m.resolution for m in members if m.resolution)
    if replies:
        return replies.most_common(1)[0][0], "ticket resolutions"
    return "", "none (write one when approving)"


def publish(suggestion: dict[str, Any], faq: Any, cache: Any, store: TicketStore,
            question: Optional[str] = None, answer: Optional[str] = None) -> str:
    """Approve: validate, publish as FAQ entry `sug-<id>-<lang>` (new version if it exists), clear the cache."""
    fid = f"sug-{suggestion['id']}-{suggestion['language']}"
    row = {"id": fid, "language": suggestion["language"], "question": question or suggestion["question"],
           "alternatives": list(suggestion["alternatives"]), "answer": answer or suggestion["answer"],
           "category": "from-tickets", "tags": ["suggested"], "status": "published"}
    problems: list[tuple[str, str]] = []
    entry = parse_entry(row, f"suggestion #{suggestion['id']}", problems)
    if entry is None:
        raise ValidationFailed(problems)
    faq.upsert([entry], note=f"review: suggestion #{suggestion['id']}")
    store.mark(suggestion["id"], "approved", fid)
    cache.invalidate()
    return fid


def review(store: TicketStore, settings: Settings, cache: Any, args: argparse.Namespace,
           ask: Callable[[str], str] = input, faq: Any = None) -> int:
    """`kefu kb review`: flags for scripts, or an interactive a/e/r/s/q walk through pending suggestions."""
    pending = {s["id"]: s for s in store.suggestions("pending")}
    if args.list or (not pending and args.approve is None and args.reject is None):
        for s in pending.values():
            print(f"#{s['id']} [{s['language']}] {s['size']} tickets: {s['question']}\n    answer: {s['answer'][:120]}")
        if not pending:
            print("no pending suggestions (run `kefu kb cluster` first)")
        return 0
    own = faq is None
    faq = faq or open_faq_store(settings.faq_url)
    try:
        if args.reject is not None:
            store.mark(args.reject, "rejected")
            print(f"rejected #{args.reject}")
            return 0
        if args.approve is not None:
            if args.approve not in pending:
                raise BadInput(f"no pending suggestion #{args.approve}")
            fid = publish(pending[args.approve], faq, cache, store, args.question, args.answer)
            print(f"approved #{args.approve}: published FAQ {fid} (version {faq.get(fid).version}); cache cleared")
            return 0
        for s in pending.values():
            print(f"\n#{s['id']} [{s['language']}] {s['size']} tickets: {s['question']}")
            for alt in s["alternatives"]:
                print(f"    also: {alt}")
            print(f"    answer ({s['answer_source']}): {s['answer']}")
            choice = ask("[a]pprove, [e]dit and approve, [r]eject, [s]kip, [q]uit? ").strip().lower()[:1]
            if choice == "q":
                break
            if choice == "r":
                store.mark(s["id"], "rejected")
                print("rejected")
            elif choice in ("a", "e"):
                question = answer = None
                if choice == "e":
                    question = ask(f"question [{s['question']}]: ").strip() or None
                    answer = ask("answer [keep]: ").strip() or None
                try:
                    print(f"published FAQ {publish(s, faq, cache, store, question, answer)}")
                except ValidationFailed as exc:
                    print(f"not published: {exc}")
        return 0
    finally:
        if own:
            faq.close()
