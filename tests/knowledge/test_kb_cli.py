"""`kefu kb load/search/export/history` end to end through the real CLI entry point and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import yaml

from knowledge.loader import load_seed
from ops.cli import main
from tests.knowledge.conftest_kb import write_faq

ROWS = [
    {"id": "c-lost-zh", "language": "zh", "question": "银行卡丢了怎么办？", "answer": "请立即挂失。",
     "alternatives": ["卡丢了怎么挂失"], "category": "cards"},
    {"id": "c-ship-en", "language": "en", "question": "How much is shipping?", "answer": "Free over 99 yuan."},
]


@pytest.fixture
def env(fresh_db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("KEFU_POSTGRES_URL", fresh_db_url)
    monkeypatch.delenv("KEFU_FAQ_URL", raising=False)
    monkeypatch.delenv("KEFU_CASES_URL", raising=False)
    monkeypatch.delenv("KEFU_REDIS_URL", raising=False)
    monkeypatch.delenv("KEFU_GRAPH_URL", raising=False)
    return fresh_db_url


def test_load_search_history_export(env, tmp_path, capsys):
    content = write_faq(tmp_path / "kb", ROWS)
    assert main(["kb", "load", str(content)]) == 0
    out = capsys.readouterr().out
    assert "'inserted': 2" in out
    assert main(["kb", "load", str(content)]) == 0
    assert "'unchanged': 2" in capsys.readouterr().out

    assert main(["kb", "search", "卡丢了怎么办"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["#", "id", "conf", "fts", "trgm", "vector"]
    assert out[1].split()[1] == "c-lost-zh"

    assert main(["kb", "search", "'; DROP TABLE kb_faq; --", "--lang", "en"]) == 0
    capsys.readouterr()
    assert main(["kb", "history", "c-lost-zh"]) == 0
    assert "v1" in capsys.readouterr().out

    assert main(["kb", "export", "--out", str(tmp_path / "out")]) == 0
    exported = yaml.safe_load((tmp_path / "out" / "faq" / "export.yml").read_text(encoding="utf-8"))
    assert {r["id"] for r in exported["faq"]} == {"c-lost-zh", "c-ship-en"}
    # an export loads back unchanged (round trip)
    assert main(["kb", "load", str(tmp_path / "out")]) == 0
    assert "'unchanged': 2" in capsys.readouterr().out


def test_bad_content_is_rejected_with_row_numbers_and_nothing_is_written(env, tmp_path, capsys):
    bad = [*ROWS, {"id": "x", "language": "zh", "question": "", "answer": "a"},
           {"id": "c-evil", "language": "en", "question": "q" * 400, "answer": "a"}]
    content = write_faq(tmp_path / "kb", bad)
    (content / "cases").mkdir()
    (content / "cases" / "c.jsonl").write_text('{"id": "k1"}\nnot json\n', encoding="utf-8")
    assert main(["kb", "load", str(content)]) == 1
    err = capsys.readouterr().err
    assert "nothing was written" in err
    for where in ("faq/faq.yml row 3", "faq/faq.yml row 4", "cases/c.jsonl line 1", "cases/c.jsonl line 2"):
        assert where in err
    assert main(["kb", "history", "c-lost-zh"]) == 1  # the valid rows were not written either
    assert "knowledge tables missing" in capsys.readouterr().err  # not even the schema


def test_unreadable_and_hostile_files(env, tmp_path, capsys):
    for name, body in (("broken.yml", b"faq: [unclosed"), ("binary.yml", b"\xff\xfe\x00\x01"),
                       ("wrong.yml", b"just: a mapping"), ("bomb.yml", b"a: &a [x, x]\nfaq: *a\n")):
        content = tmp_path / name.split(".")[0]
        (content / "faq").mkdir(parents=True)
        (content / "faq" / name).write_bytes(body)
        assert main(["kb", "load", str(content)]) == 1, name
        assert "nothing was written" in capsys.readouterr().err
    assert main(["kb", "load", str(tmp_path / "missing")]) == 1


def test_search_without_a_database_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.delenv("KEFU_POSTGRES_URL", raising=False)
    monkeypatch.delenv("KEFU_FAQ_URL", raising=False)
    monkeypatch.setattr("kefu.config.PROJECT_ROOT", __import__("pathlib").Path("/nonexistent"))
    assert main(["kb", "search", "hello"]) == 1
    assert "KEFU_POSTGRES_URL" in capsys.readouterr().err


def test_load_if_changed_is_idempotent(env, tmp_path, kb_embedder):
    content = write_faq(tmp_path / "kb", ROWS)
    first = load_seed(env, env, content, only_if_changed=True, embedder=kb_embedder)
    assert not first.skipped and first.counts["faq"]["inserted"] == 2
    assert load_seed(env, env, content, only_if_changed=True, embedder=kb_embedder).skipped
    (content / "faq" / "faq.yml").write_text(yaml.safe_dump({"faq": ROWS[:1]}), encoding="utf-8")
    third = load_seed(env, env, content, only_if_changed=True, embedder=kb_embedder)
    assert not third.skipped and third.counts["faq"]["unchanged"] == 1
    assert json.dumps(third.counts)


def test_calibrate_fits_the_seed_and_writes_a_calibrator_the_store_reads(env, tmp_path, capsys):
    from knowledge.calibrator import read_calibrator
    from tests.knowledge.conftest_kb import KB_DIR

    out = tmp_path / "cal.json"
    assert main(["kb", "calibrate", "--out", str(out)]) == 1  # nothing loaded yet
    assert "kb load" in capsys.readouterr().err and not out.exists()
    assert main(["kb", "load", str(KB_DIR)]) == 0
    capsys.readouterr()
    assert main(["kb", "calibrate", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| zh |" in table and "| en |" in table and "ECE" in table
    calibrator = read_calibrator(out)
    assert calibrator.meta["oof"]["zh"]["oof_wrong"] <= 0.05 and calibrator.meta["oof"]["en"]["oof_wrong"] <= 0.05
    shipped = read_calibrator(KB_DIR / "faq_calibration.json")  # the committed file is this command's output
    for lang in ("zh", "en"):
        assert calibrator.models[lang].threshold == pytest.approx(shipped.models[lang].threshold, abs=0.05)


@pytest.mark.parametrize(
    ("body", "message"),
    [(b'{"question": "ok", "language": "zh", "faq_id": null}\n{broken\n', "line 2: not JSON"),
     (b'{"question": "", "language": "zh", "faq_id": null}\n', "line 1"),
     (b'{"question": "hi", "language": "fr", "faq_id": null}\n', "language zh/en"),
     (b'{"question": "hi", "language": "en", "faq_id": 7}\n', "faq_id"),
     (b'["a list"]\n', "line 1"),
     (b"\xff\xfe\x00\x01", "cannot read"),
     (b"[" * 50000, "not JSON")],
    ids=["truncated", "empty-question", "language", "faq-id", "list", "binary", "nested"],
)
def test_calibrate_rejects_malformed_paraphrases(env, tmp_path, capsys, body, message):
    content = write_faq(tmp_path / "kb", ROWS)
    assert main(["kb", "load", str(content)]) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(body)
    capsys.readouterr()
    assert main(["kb", "calibrate", "--paraphrases", str(bad), "--out", str(tmp_path / "cal.json")]) == 1
    assert message in capsys.readouterr().err and not (tmp_path / "cal.json").exists()


def test_calibrate_on_too_little_data_is_a_clear_error(env, tmp_path, capsys):
    content = write_faq(tmp_path / "kb", ROWS)
    assert main(["kb", "load", str(content)]) == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert main(["kb", "calibrate", "--paraphrases", str(empty), "--out", str(tmp_path / "cal.json")]) == 1
    assert "too few examples" in capsys.readouterr().err
    assert main(["kb", "calibrate", "--paraphrases", str(tmp_path / "missing.jsonl")]) == 1
    assert "cannot read paraphrases" in capsys.readouterr().err
