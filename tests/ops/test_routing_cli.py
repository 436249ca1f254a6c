"""`kefu routing`: the labelled-turns reader and the show / approve / reject commands on hostile files."""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path

import pytest

from kefu.config import PROJECT_ROOT
from kefu.errors import ConfigError
from kefu.routing.features import FEATURES
from kefu.routing.tree import dumps
from ops import cli
from ops.routing_cli import EVAL_TURNS, _table
from ops.routing_replay import MAX_TURNS_FILE, load_turns

ROUTING = PROJECT_ROOT / "data" / "routing.yml"


@pytest.mark.parametrize("text, message", [
    ("", "non-empty `turns` list"),
    ("[1, 2]", "non-empty `turns` list"),
    ("turns: []", "non-empty `turns` list"),
    ("turns: {a: 1}", "non-empty `turns` list"),
    ("turns: [{lang: zh, route: bot}]", "turn 1 needs say"),
    ("turns: [{lang: fr, route: bot, say: salut}]", "turn 1 needs say"),
    ("turns: [{lang: en, route: rm -rf, say: hi}]", "turn 1 needs say"),
    ("turns: [{lang: en, route: callback, needs: nowhere, say: hi}]", "turn 1 needs say"),
    ("turns: [\"<script>\"]", "turn 1 needs say"),
    ("turns: [{lang: en, route: bot, say: hi}", "not valid YAML"),
])
def test_malformed_turn_files_are_refused_by_name(tmp_path, text, message):
    path = tmp_path / "turns.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_turns(path)


def test_binary_and_oversized_turn_files_are_refused(tmp_path):
    path = tmp_path / "turns.yml"
    path.write_bytes(b"\xff\xfe\x00turns")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_turns(path)
    path.write_bytes(b"#" * (MAX_TURNS_FILE + 1))
    with pytest.raises(ConfigError, match="larger than"):
        load_turns(path)


def test_the_training_set_is_large_balanced_and_apart_from_the_evaluation_set():
    train = load_turns(PROJECT_ROOT / "data" / "routing_train" / "turns.yml")
    held = {str(t["say"]) for t in load_turns(EVAL_TURNS)}
    assert len(train) >= 400 and abs(sum(t["lang"] == "zh" for t in train) * 2 - len(train)) <= 10
    assert not [t["say"] for t in train if str(t["say"]) in held]
    assert all(t.get("needs") in ("human", "specialist", "senior") for t in train if t["route"] == "callback")


def test_training_refuses_the_evaluation_set():
    args = argparse.Namespace(turns=str(EVAL_TURNS), model=None, fresh=True)
    with pytest.raises(ConfigError, match="evaluation only"):
        asyncio.run(_table(args, ROUTING))


@pytest.fixture()
def routing_env(tmp_path, monkeypatch):
    shutil.copy(ROUTING, tmp_path / "routing.yml")
    monkeypatch.setenv("KEFU_ROUTING_FILE", str(tmp_path / "routing.yml"))
    return tmp_path


@pytest.mark.parametrize("data", [b"", b"{\"version\": 1}", b"\x00" * 10, b"[]"])
def test_show_reports_a_broken_tree_file_and_exits_1(routing_env, capsys, data):
    (routing_env / "routing_tree.json").write_bytes(data)
    assert cli.main(["routing", "show"]) == 1
    assert "routing tree" in capsys.readouterr().err


def test_show_approve_reject_through_the_cli(routing_env, capsys):
    doc = {"version": 1, "features": list(FEATURES), "classes": ["bot"], "trained": {},
           "nodes": {"feature": [-1], "threshold": [0.0], "left": [-1], "right": [-1], "value": [[1.0]],
                     "support": [1], "accuracy": [1.0]}}
    (routing_env / "routing_tree.json").write_bytes(dumps(doc))
    assert cli.main(["routing", "show"]) == 0
    shown = capsys.readouterr().out
    assert "live: no (router: cascade)" in shown and "route: bot  (support 1, accuracy 100%)" in shown
    digest = next(line.split()[1] for line in shown.splitlines() if line.startswith("digest "))
    assert cli.main(["routing", "approve", "--by", "lead", "--digest", "abc"]) == 1  # too short / wrong
    assert cli.main(["routing", "approve", "--by", "lead", "--digest", digest[:12], "--activate"]) == 0
    capsys.readouterr()
    assert cli.main(["routing", "show"]) == 0
    assert "live: yes (approved)" in capsys.readouterr().out
    assert cli.main(["routing", "reject", "--by", "lead"]) == 0
    assert "approval: null" in Path(routing_env / "routing.yml").read_text(encoding="utf-8")
