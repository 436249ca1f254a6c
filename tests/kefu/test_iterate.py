"""The whole monthly iteration on a tiny fixture (fast pipeline, tmp registry, real PostgreSQL tickets):
a worse candidate is refused, a better one promoted, and rollback restores the previous model."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from psycopg.types.json import Jsonb

from kefu import cli
from kefu.errors import BadInput, NotFound
from kefu.iterate.loop import IterationConfig, run_iteration
from kefu.iterate.proposals import Proposals
from kefu.iterate.registry import Registry
from kefu.iterate.scoring import compare, score
from kefu.pgserver import ensure_database, with_database
from tests.servers import drop_database

DATA = Path(__file__).parent / "data" / "iterate"
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def tickets_db(pg_admin_url: str) -> Iterator[str]:
    from handoff.tickets import TicketStore

    name = f"kefu_iter_{uuid.uuid4().hex[:8]}"
    url = with_database(pg_admin_url, name)
    ensure_database(url)

    async def migrate() -> None:
        store = TicketStore(url)
        await store.open()
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(migrate())
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


def corrected(url: str, pairs: list[tuple[str, str]]) -> None:
    """Closed tickets an agent corrected in the console (reason_detail.corrected_intent)."""
    with psycopg.connect(url) as conn:
        for text, intent in pairs:
            conn.execute(
                "INSERT INTO handoff_tickets (id, conversation_id, channel, queue, reason, reason_detail, status, "
                "agent, claimed_at, closed_at, disposition, transcript) VALUES (%s, %s, 'rest', 'general', "
                "'low_confidence', %s, 'closed', 'alice', now(), now(), 'resolved', %s)",
                (uuid.uuid4().hex, uuid.uuid4().hex, Jsonb({"corrected_intent": intent}),
                 Jsonb([{"role": "customer", "text": text, "ts": 0.0}, {"role": "bot", "text": "?", "ts": 1.0}])),
            )


def test_scoring_definitions() -> None:
    m = score(["a", "a", "ask_human", "b"], ["a", "b", "ask_human", "ask_human"], [0.9, 0.4, 0.8, 0.6])
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["auto_share"] == pytest.approx(0.75)
    assert m["routing_precision"] == pytest.approx(0.5)
    # F1: a = 2/3, ask_human = 2/3, b = 0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert compare(m, {**m, "accuracy": 0.6}) == ["accuracy: 0.500 < 0.600"]
    with pytest.raises(ValueError):
        score([], [], [])


def test_whole_loop_refuses_worse_promotes_better_and_rolls_back(
    tickets_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kefu.iterate")
    reg_dir = tmp_path / "registry"
    cfg = IterationConfig(registry=reg_dir, config=DATA / "config.yml", data=[DATA / "nlu.yml"],
                          eval_file=DATA / "eval.yml")
    registry, proposals = Registry(reg_dir), Proposals(reg_dir)

    first = run_iteration(cfg, tickets_db)
    assert first["status"] == "promoted" and first["version"] == "v0001"
    assert first["dropped_eval_overlap"] == 1  # "balance please" is in the frozen set: never trained on
    base = first["metrics"]

    # a month of bad corrections: greetings labelled as goodbyes
    corrected(tickets_db, [("hello hello", "goodbye"), ("hi hi", "goodbye"), ("hello friend", "goodbye"),
                           ("hi there friend", "goodbye"), ("good morning hello", "goodbye"), ("hey hi", "goodbye")])
    assert run_iteration(cfg, tickets_db)["status"] == "unchanged"  # collected, but nobody accepted them yet
    pending = [p["id"] for p in proposals.all() if p["status"] == "pending"]
    assert len(pending) == 6
    assert cli.main(["iterate", "review", "--registry", str(reg_dir), "--accept-all"]) == 0
    worse = run_iteration(cfg, tickets_db)
    assert worse["status"] == "refused" and worse["version"] == "v0002"
    assert any(r.startswith("accuracy") for r in worse["reasons"])
    assert registry.state()["current"] == "v0001"

    # the designer rejects them; good corrections arrive and are accepted
    proposals.decide(pending, "rejected")
    corrected(tickets_db, [("how much money is in my account", "check_balance"), ("my funds please", "check_balance"),
                           ("i need an agent", "ask_human"), ("speak to a person now", "ask_human"),
                           ("see you later then", "goodbye"), ("bye for today", "goodbye"),
                           ("hello there", "greet"), ("hi good morning to you", "greet")])
    assert run_iteration(cfg, tickets_db)["collected"] == 8
    new = [p["id"] for p in proposals.all() if p["status"] == "pending"]
    accept = [arg for i in new for arg in ("--accept", str(i))]
    assert cli.main(["iterate", "review", "--registry", str(reg_dir), *accept]) == 0
    better = run_iteration(cfg, tickets_db)
    assert better["status"] == "promoted" and better["version"] == "v0003", better
    assert all(better["metrics"][k] >= base[k] for k in base)
    assert better["metrics"]["accuracy"] > base["accuracy"]
    assert registry.state()["current"] == "v0003"
    assert Path(registry.get("v0003")["model"]).is_file()

    # rollback: one command, back to v0001
    assert cli.main(["iterate", "rollback", "--registry", str(reg_dir)]) == 0
    assert registry.state()["current"] == "v0001"
    assert registry.get("v0003")["status"] == "rolled_back"
    log = [r.getMessage() for r in caplog.records if r.name == "kefu.iterate"]
    print("\n".join(log))
    assert any(m.startswith("refuse v0002") for m in log) and any(m.startswith("promote v0003 over v0001") for m in log)
    (tmp_path.parent / "iterate_log.txt").write_text("\n".join(log), encoding="utf-8")
    assert json.loads((reg_dir / "registry.json").read_text())["log"][-1]["event"] == "rollback"


def test_registry_and_proposals_bad_input(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    with pytest.raises(NotFound):
        registry.rollback()
    (tmp_path / "registry.json").write_text("{broken")
    with pytest.raises(BadInput):
        registry.state()
    props = Proposals(tmp_path / "p")
    for text, intent in [("", "greet"), ("hi", ""), ("hi", "drop table; --"), ("hi", "x" * 100)]:
        with pytest.raises(BadInput):
            props.add(text, intent, "test")
    assert props.add("x" * 5000, "greet", "test")["text"] == "x" * 300  # oversized: truncated, kept
    assert props.add("x" * 5000, "greet", "test") is None  # duplicate
    with pytest.raises(NotFound):
        props.decide([99], "accepted")
    with pytest.raises(BadInput):
        props.decide([1], "deleted")


def test_cli_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["iterate", "run", "--registry", str(tmp_path), "--eval", str(tmp_path / "missing.yml"),
                     "--no-collect"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["iterate", "status", "--registry", str(tmp_path), "--threshold", "7"]) == 1
    with pytest.raises(SystemExit):
        cli.main(["iterate", "explode"])
