"""The whole monthly iteration on a tiny fixture (fast pipeline, tmp registry, real PostgreSQL tickets):
a worse candidate is refused, a better one promoted, and rollback restores the previous model."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import tarfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from psycopg.types.json import Jsonb

from kefu.errors import BadInput, NotFound
from kefu.pgserver import ensure_database, with_database
from ops import cli
from ops.iterate.loop import IterationConfig, rollback, run_iteration
from ops.iterate.proposals import Proposals
from ops.iterate.registry import Registry
from ops.iterate.scoring import compare, score
from ops.iterate.serving import NLU_ONLY, Serving, file_sha256, install, training_type
from tests.servers import drop_database, free_port

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


class RasaModelApi:
    """A small local HTTP server answering Rasa's `PUT /model` (token auth, 204) and recording each call."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                from urllib.parse import parse_qs, urlsplit

                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.calls.append({"path": parts.path, "query": parse_qs(parts.query), "body": json.loads(body)})
                ok = parse_qs(parts.query).get("token") == [api.token] and parts.path == "/model"
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def rasa_model_api() -> Iterator[RasaModelApi]:
    api = RasaModelApi(uuid.uuid4().hex)
    yield api
    api.close()


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
    tickets_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture,
    rasa_model_api: RasaModelApi, monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="kefu.iterate")
    reg_dir = tmp_path / "registry"
    served = tmp_path / "serve" / "kefu.tar.gz"
    cfg = IterationConfig(registry=reg_dir, config=DATA / "config.yml", data=[DATA / "nlu.yml"],
                          eval_file=DATA / "eval.yml",
                          serving=Serving(served, rasa_url=rasa_model_api.url, rasa_token=rasa_model_api.token))
    registry, proposals = Registry(reg_dir), Proposals(reg_dir)

    def archive_hash(version: str) -> str:
        return file_sha256(Path(registry.get(version)["model"]))

    first = run_iteration(cfg, tickets_db)
    assert first["status"] == "promoted" and first["version"] == "v0001"
    assert first["dropped_eval_overlap"] == 1  # "balance please" is in the frozen set: never trained on
    base = first["metrics"]
    # promotion put the archive into service and told the Rasa server to load it
    assert file_sha256(served) == archive_hash("v0001") == first["served"]["sha256"]
    assert first["served"]["reload"] == "loaded"
    assert rasa_model_api.calls == [{"path": "/model", "query": {"token": [rasa_model_api.token]},
                                     "body": {"model_file": str(served)}}]
    assert training_type(served) == NLU_ONLY  # the tiny fixture pipeline trains NLU only

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
    assert file_sha256(served) == archive_hash("v0001") and len(rasa_model_api.calls) == 1  # refused: unchanged
    assert worse["served"] == {"installed": False}

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
    assert file_sha256(served) == archive_hash("v0003") != archive_hash("v0001")
    assert rasa_model_api.calls[-1]["body"] == {"model_file": str(served)} and len(rasa_model_api.calls) == 2

    # rollback: one command, back to v0001, served at the project's model path (KEFU_MODEL_DIR) and
    # loaded by the Rasa server of KEFU_RASA_PORT
    cli_models = tmp_path / "cli-models"
    monkeypatch.setenv("KEFU_MODEL_DIR", str(cli_models))
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KEFU_RASA_PORT", rasa_model_api.url.rsplit(":", 1)[1])
    monkeypatch.setenv("KEFU_RASA_TOKEN", rasa_model_api.token)
    assert cli.main(["iterate", "rollback", "--registry", str(reg_dir)]) == 0
    assert "(Rasa: loaded)" in capsys.readouterr().out
    assert registry.state()["current"] == "v0001"
    assert registry.get("v0003")["status"] == "rolled_back"
    assert file_sha256(cli_models / "kefu.tar.gz") == archive_hash("v0001")
    assert rasa_model_api.calls[-1]["body"] == {"model_file": str(cli_models / "kefu.tar.gz")}
    back = rollback(cfg, "v0003")  # and forward again through the library call, into cfg's served path
    assert back["current"] == "v0003" and file_sha256(served) == archive_hash("v0003")
    assert rollback(cfg)["current"] == "v0001" and file_sha256(served) == archive_hash("v0001")
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
    with pytest.raises(BadInput):
        props.add("x" * 5000, "greet", "test")  # oversized: a cut-off line is no training example
    assert props.add("x" * 300, "greet", "test")["text"] == "x" * 300
    assert props.add("X" * 300, "greet", "test") is None  # duplicate
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


def _archive(path: Path, training_type_value: int | None, payload: bytes = b"weights") -> Path:
    """A model archive with Rasa's metadata.json (training_type as Rasa stores it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        files = {"weights.bin": payload}
        if training_type_value is not None:
            files["metadata.json"] = json.dumps({"training_type": training_type_value}).encode()
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_install_is_atomic_tolerates_a_down_server_and_keeps_dialogue_models(
    tmp_path: Path, rasa_model_api: RasaModelApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kefu.iterate")
    served = tmp_path / "models" / "kefu.tar.gz"
    full = _archive(tmp_path / "a" / "full.tar.gz", 3, b"full model")
    nlu = _archive(tmp_path / "a" / "nlu.tar.gz", NLU_ONLY, b"nlu model")

    down = Serving(served, rasa_url=f"http://127.0.0.1:{free_port()}", rasa_token="t")  # nothing listens
    result = install(full, down)
    assert result["installed"] and result["reload"] == "server down"
    assert file_sha256(served) == file_sha256(full)
    assert any("not answering" in r.getMessage() for r in caplog.records)
    assert [p.name for p in served.parent.iterdir()] == ["kefu.tar.gz"], "no temp file left behind"

    # an NLU-only archive never replaces a served model with dialogue policies
    with pytest.raises(BadInput):
        install(nlu, down)
    assert file_sha256(served) == file_sha256(full)

    wrong_token = Serving(served, rasa_url=rasa_model_api.url, rasa_token="not-the-token")
    assert install(full, wrong_token)["reload"] == "failed (HTTP 401)"
    assert install(full, Serving(served))["reload"] == "no server configured"
    assert install(full, None) == {"installed": False}
    from kefu.errors import KefuError

    with pytest.raises(KefuError):
        install(tmp_path / "missing.tar.gz", down)
    (tmp_path / "junk.tar.gz").write_bytes(b"\x00not a tarball")
    assert training_type(tmp_path / "junk.tar.gz") is None


def test_project_style_iteration_trains_full_models_and_serves_them(
    tmp_path: Path, rasa_model_api: RasaModelApi
) -> None:
    """With a domain and rules (as `project_config` passes), the candidate is a full model the Rasa server
    can serve; once one is served, an NLU-only archive can no longer replace it."""
    dialogue = DATA / "dialogue"
    served = tmp_path / "models" / "kefu.tar.gz"
    cfg = IterationConfig(registry=tmp_path / "registry", config=dialogue / "config.yml", data=[DATA / "nlu.yml"],
                          eval_file=DATA / "eval.yml", domain=dialogue / "domain.yml",
                          core_data=[dialogue / "rules.yml"],
                          serving=Serving(served, rasa_url=rasa_model_api.url, rasa_token=rasa_model_api.token))
    result = run_iteration(cfg)
    assert result["status"] == "promoted" and result["served"]["reload"] == "loaded"
    model = Path(Registry(cfg.registry).get(result["version"])["model"])
    assert training_type(model) == 3  # rasa.shared.data.TrainingType.BOTH
    assert file_sha256(served) == file_sha256(model)
    nlu_only = _archive(tmp_path / "nlu.tar.gz", NLU_ONLY)
    with pytest.raises(BadInput):
        install(nlu_only, cfg.serving)
    assert file_sha256(served) == file_sha256(model)
