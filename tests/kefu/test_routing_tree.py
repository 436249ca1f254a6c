"""The learned routing tree: feature rows, fitting, JSON persistence, guard rails, approval (real data/routing.yml)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kefu.config import PROJECT_ROOT
from kefu.errors import ConfigError
from kefu.routing.decision import TurnSignals
from kefu.routing.features import (
    FEATURES,
    KIND_CONVERSATIONAL,
    KIND_TOPIC,
    MISSING,
    Answerability,
    TurnContext,
    as_vector,
    build_row,
    words,
)
from kefu.routing.router import approved_tree, decide_with_tree, route_turn
from kefu.routing.settings import load_routing
from kefu.routing.tree import MAX_TREE_BYTES, TreeError, digest_of, dumps, load_tree, parse_tree, rules_text
from kefu.routing.treefit import cross_validate, fit_tree

ROUTING = PROJECT_ROOT / "data" / "routing.yml"
OPEN = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # Wednesday 11:00 Shanghai: every queue open
NIGHT = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)  # Wednesday 23:30 Shanghai: only senior open


@pytest.fixture(scope="module")
def config():
    return load_routing(ROUTING)


def loan_turn() -> TurnSignals:
    return TurnSignals(
        intent="loan_info", confidence=0.97,
        ranking=({"name": "loan_info", "confidence": 0.97}, {"name": "ask_fees", "confidence": 0.02}),
        sentiment={"label": "negative", "score": -0.4, "intensity": "mild"},
        frustration=0.5, unclear_before=0,
        out_of_scope={"score": 0.12, "threshold": 0.6, "flagged": False},
    )


def test_a_hand_built_turn_gives_the_expected_row(config):
    text = "我的房贷想提前还2万？合同是2019年签的！"
    row = build_row(loan_turn(), TurnContext(text=text, entities=2, channel="wechat", turn_count=3), config,
                    Answerability(score=0.35, source="faq", rule_applies=False))
    assert list(row) == list(FEATURES)
    assert row == {
        "fallback_fired": 0.0, "confidence": 0.97, "margin": 0.95, "oos_score": 0.12, "oos_known": 1.0,
        "intent_kind": float(KIND_TOPIC),
        "faq_intent": 1.0, "sentiment_score": -0.4, "sentiment_known": 1.0, "negative": 1.0, "intensity": 1.0,
        "frustration": 0.5, "sentiment_signals": 0.0, "shouted_words": 0.0, "unclear_before": 0.0,
        "turn_count": 3.0, "length": float(len(text)),
        "words": 15.0, "digits": 2.0, "question_marks": 1.0, "exclamations": 1.0, "entities": 2.0,
        "channel": 2.0, "automation_level": 1.0,  # loans are semi-auto
        "kb_score": 0.35, "kb_known": 1.0, "kb_source": 1.0, "rule_applies": 0.0, "form_covers": 0.0,
        "in_form": 0.0,
    }


def test_the_tree_looks_through_the_fallback_classifiers_label(config):
    """nlu_fallback at exactly 0.5 over a clear topic: the row shows the classifier's own top intent."""
    signals = TurnSignals(intent="nlu_fallback", confidence=0.5, ranking=(
        {"name": "nlu_fallback", "confidence": 0.5}, {"name": "transfer_limit", "confidence": 0.46},
        {"name": "ask_fees", "confidence": 0.2}))
    row = build_row(signals, TurnContext("转账显示成功但对方说没收到"), config)
    assert (row["fallback_fired"], row["confidence"], row["margin"]) == (1.0, 0.46, 0.26)
    assert row["intent_kind"] == float(KIND_TOPIC) and row["faq_intent"] == 1.0
    decision = decide_with_tree(signals, TurnContext("x"), config, always("specialist"), now=OPEN)
    assert (decision.route, decision.queue) == ("specialist", "payments")


def test_missing_inputs_are_encoded_explicitly(config):
    row = build_row(TurnSignals(intent="greet", confidence=0.9), TurnContext(), config)
    assert (row["oos_score"], row["oos_known"]) == (MISSING, 0.0)
    assert (row["sentiment_score"], row["sentiment_known"], row["intensity"]) == (MISSING, 0.0, MISSING)
    assert (row["kb_score"], row["kb_known"], row["kb_source"], row["rule_applies"]) == (MISSING, 0.0, 0.0, MISSING)
    assert row["frustration"] == MISSING and row["intent_kind"] == float(KIND_CONVERSATIONAL)
    assert row["margin"] == 0.9 and row["length"] == 0.0 and row["channel"] == 4.0  # unknown channel: "other"


@pytest.mark.parametrize("text", ["", "？" * 10_000, "<script>alert(1)</script>", "\x00\ud83d💥" * 50, "  "])
def test_hostile_and_empty_text_still_gives_a_full_row(config, text):
    row = build_row(TurnSignals(intent=None), TurnContext(text=text, entities=-5, turn_count=0), config)
    assert len(as_vector(row)) == len(FEATURES) and row["entities"] == 0.0 and row["turn_count"] == 1.0


def test_words_counts_chinese_characters_and_latin_words():
    assert words("我要退款 refund now") == 6


def test_shouting_and_emotion_words_are_counted(config):
    angry = {"label": "negative", "score": -0.9, "intensity": "strong", "signals": ["有病", "!"]}
    signals = TurnSignals(intent="transfer_limit", confidence=0.9, sentiment=angry)
    row = build_row(signals, TurnContext("WHAT is the ATM limit? FIX THIS"), config)
    assert (row["shouted_words"], row["sentiment_signals"], row["question_marks"]) == (2.0, 2.0, 1.0)


# ---- fitting on a tiny table a person can check ----
def tiny_table() -> tuple[list[list[float]], list[str]]:
    """bot when confident, clarify when not; long confident questions → specialist."""
    rows, labels = [], []
    for confidence, length, label in [(0.95, 10, "bot"), (0.9, 12, "bot"), (0.97, 8, "bot"), (0.92, 9, "bot"),
                                      (0.3, 10, "clarify"), (0.2, 7, "clarify"), (0.4, 11, "clarify"),
                                      (0.35, 6, "clarify"), (0.96, 60, "specialist"), (0.93, 55, "specialist"),
                                      (0.98, 70, "specialist"), (0.94, 65, "specialist")]:
        row = dict.fromkeys(FEATURES, 0.0)
        row.update(confidence=confidence, length=float(length))
        rows.append(as_vector(row))
        labels.append(label)
    return rows, labels


def test_a_tiny_table_gives_the_tree_you_would_draw_by_hand():
    rows, labels = tiny_table()
    tree = parse_tree(dumps(fit_tree(rows, labels, depth=2)))
    assert tree.features[tree.feature[0]] in ("confidence", "length")
    probe = dict.fromkeys(FEATURES, 0.0)
    assert tree.predict({**probe, "confidence": 0.25, "length": 9}).route == "clarify"
    assert tree.predict({**probe, "confidence": 0.95, "length": 9}).route == "bot"
    assert tree.predict({**probe, "confidence": 0.95, "length": 62}).route == "specialist"
    leaves = [i for i, f in enumerate(tree.feature) if f == -1]
    assert len(leaves) == 3 and all(tree.support[i] == 4 and tree.accuracy[i] == 1.0 for i in leaves)
    assert "route: specialist  (support 4, accuracy 100%)" in rules_text(tree)
    explained = tree.predict({**probe, "confidence": 0.95, "length": 62}).explain()
    assert "→ specialist" in explained and "message length 62 >" in explained


def test_round_trip_json_walk_matches_scikit_learn():
    from sklearn.tree import DecisionTreeClassifier

    rows, labels = tiny_table()
    doc = fit_tree(rows, labels, depth=3, seed=0)
    tree = load_tree_bytes(dumps(json.loads(dumps(doc))))
    reference = DecisionTreeClassifier(max_depth=3, class_weight="balanced", min_samples_leaf=3,
                                       random_state=0).fit(rows, labels)
    assert [tree.predict(dict(zip(FEATURES, r, strict=True))).route for r in rows] == list(reference.predict(rows))


def load_tree_bytes(data: bytes):
    return parse_tree(data, "test")


def test_cross_validation_prints_per_fold_scores():
    rows, labels = tiny_table()
    results = cross_validate(rows * 2, labels * 2, depths=(1, 2), folds=2)
    assert [r.depth for r in results] == [1, 2] and all(len(r.folds) == 2 for r in results)
    # one split separates at most two of the three routes: depth 1 is at most 2/3 right, depth 2 does better
    assert results[0].mean <= 2 / 3 + 1e-9 < results[1].mean


# ---- broken tree files ----
def good_doc() -> dict:
    rows, labels = tiny_table()
    return fit_tree(rows, labels, depth=2)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(version=2), "format version 2"),
    (lambda d: d.update(features=["confidence", "shoe_size"]), "features must name"),
    (lambda d: d["nodes"]["left"].__setitem__(0, 0), "out of range"),  # a cycle back to the root
    (lambda d: d["nodes"]["threshold"].__setitem__(0, "NaN"), "finite number"),
    (lambda d: d["nodes"]["value"].__setitem__(0, [1]), "non-negative counts"),
    (lambda d: d["nodes"].pop("support"), "nodes must have"),
    (lambda d: d.update(classes=[]), "classes must be"),
    (lambda d: d["nodes"]["feature"].__setitem__(0, True), "must be integers"),
])
def test_a_broken_tree_document_is_a_clear_error(mutate, message):
    doc = good_doc()
    mutate(doc)
    with pytest.raises(TreeError, match=message):
        parse_tree(json.dumps(doc).encode(), "tree.json")


@pytest.mark.parametrize("data, message", [
    (b"", "not JSON"), (b"\xff\xfe", "not JSON"), (b"[1, 2]", "JSON object"), (b"{" * 100_000, "not JSON"),
    (b" " * (MAX_TREE_BYTES + 1), "larger than"),
])
def test_corrupt_empty_and_oversized_files_are_clear_errors(data, message):
    with pytest.raises(TreeError, match=message):
        parse_tree(data, "tree.json")


# ---- approval, guard rails, fallback to the cascade ----
@pytest.fixture()
def workspace(tmp_path):
    """A copy of the real routing.yml with a tree file beside it."""
    shutil.copy(ROUTING, tmp_path / "routing.yml")
    (tmp_path / "routing_tree.json").write_bytes(dumps(good_doc()))
    return tmp_path


def set_router(path: Path, router: str, approval: str = "null") -> None:
    text = path.read_text(encoding="utf-8").replace("router: cascade", f"router: {router}")
    path.write_text(text.replace("  approval: null", f"  approval: {approval}"), encoding="utf-8")


def approval_for(workspace: Path) -> str:
    digest = digest_of((workspace / "routing_tree.json").read_bytes())
    return f'{{by: "tester", at: "2026-12-04T20:00:00+00:00", digest: {digest}}}'


def confident_loan() -> TurnSignals:
    return TurnSignals(intent="loan_info", confidence=0.97, ranking=({"name": "loan_info", "confidence": 0.97},))


def test_the_cascade_is_the_default_even_with_a_tree_file(workspace):
    decision = route_turn(confident_loan(), TurnContext("房贷利率"), load_routing(workspace / "routing.yml"),
                          workspace / "routing.yml", now=OPEN)
    assert decision.record["router"] == "cascade" and "tree_unused" not in decision.record


def test_an_unapproved_tree_never_routes_live(workspace):
    set_router(workspace / "routing.yml", "tree")
    config = load_routing(workspace / "routing.yml")
    decision = route_turn(confident_loan(), TurnContext("房贷利率"), config, workspace / "routing.yml", now=OPEN)
    assert decision.record["router"] == "cascade" and "not approved" in decision.record["tree_unused"]


def test_a_tree_changed_after_approval_never_routes_live(workspace):
    set_router(workspace / "routing.yml", "tree", approval_for(workspace))
    doc = good_doc()
    doc["trained"]["note"] = "edited after review"
    (workspace / "routing_tree.json").write_bytes(dumps(doc))
    config = load_routing(workspace / "routing.yml")
    tree, why = approved_tree(config, workspace / "routing.yml")
    assert tree is None and "differs from the approved" in why


def test_an_approved_tree_routes_and_explains(workspace):
    set_router(workspace / "routing.yml", "tree", approval_for(workspace))
    config = load_routing(workspace / "routing.yml")
    long_question = "我的房贷想提前还一部分，合同是去年签的，违约金和利息要怎么重新算才对呢，请帮忙看看具体金额"
    decision = route_turn(confident_loan(), TurnContext(long_question), config, workspace / "routing.yml", now=OPEN)
    assert decision.record["router"] == "tree" and decision.route == "specialist" and decision.queue == "loans"
    assert decision.record["path"].endswith("right)") and "→ specialist" in decision.record["why"]


@pytest.mark.parametrize("data", [b"{not json", b"", json.dumps({"version": 99}).encode()])
def test_a_corrupt_tree_file_leaves_the_cascade_routing(workspace, data):
    set_router(workspace / "routing.yml", "tree", approval_for(workspace))
    (workspace / "routing_tree.json").write_bytes(data)
    config = load_routing(workspace / "routing.yml")
    decision = route_turn(confident_loan(), TurnContext("房贷利率"), config, workspace / "routing.yml", now=OPEN)
    assert decision.record["router"] == "cascade" and decision.route == "bot"
    assert "routing tree" in decision.record["tree_unused"]


def always(route: str):
    """A one-leaf tree that always predicts `route`: the guard rails must still win."""
    doc = {"version": 1, "features": list(FEATURES), "classes": [route], "trained": {},
           "nodes": {"feature": [-1], "threshold": [0.0], "left": [-1], "right": [-1], "value": [[5.0]],
                     "support": [5], "accuracy": [1.0]}}
    return parse_tree(dumps(doc))


@pytest.mark.parametrize("signals, route, queue", [
    (TurnSignals(intent="insult", confidence=0.99), "senior", "senior"),
    (TurnSignals(intent="ask_human", confidence=0.99), "human", "general"),
    (TurnSignals(intent="check_balance", confidence=0.9, frustration=1.0, frustration_before=1.0), "senior", "senior"),
    (TurnSignals(intent="order_status", confidence=0.4, in_form=True), "bot", None),
])
def test_guard_rails_override_any_tree(config, signals, route, queue):
    for learned in ("bot", "clarify", "specialist"):
        decision = decide_with_tree(signals, TurnContext("x"), config, always(learned), now=OPEN)
        assert (decision.route, decision.queue) == (route, queue)
        assert "guard rail" in decision.record["why"]


def test_hours_turn_the_trees_human_routes_into_callbacks(config):
    decision = decide_with_tree(confident_loan(), TurnContext("x"), config, always("specialist"), now=NIGHT)
    assert decision.route == "callback" and decision.record["original_reason"] == "specialist"
    explicit = decide_with_tree(TurnSignals(intent="ask_human", confidence=0.99), TurnContext("x"), config,
                                always("bot"), now=NIGHT)
    assert explicit.route == "callback"


def test_load_tree_reports_the_missing_file(tmp_path):
    with pytest.raises(TreeError, match="cannot be read"):
        load_tree(tmp_path / "nope.json")


def test_approve_and_reject_rewrite_only_the_approval(workspace):
    from ops.routing_cli import approve, reject

    routing = workspace / "routing.yml"
    digest = digest_of((workspace / "routing_tree.json").read_bytes())
    with pytest.raises(ConfigError, match="is not"):
        approve(routing, "alice", "0" * 64, activate=True)
    with pytest.raises(ConfigError, match="--by must be a name"):
        approve(routing, "alice\n  approval: {}", digest, activate=True)
    assert approve(routing, "alice", digest[:16], activate=True) == digest
    config = load_routing(routing)
    assert config.router == "tree" and config.tree.approval.by == "alice" and config.tree.approval.digest == digest
    assert approved_tree(config, routing)[0] is not None
    assert "# Which router decides" in routing.read_text(encoding="utf-8")  # comments kept
    reject(routing)
    config = load_routing(routing)
    assert config.router == "cascade" and config.tree.approval is None


@pytest.mark.parametrize("block, message", [
    ("router: maybe", "router must be one of"),
    ("tree: [1, 2]", "tree must be a mapping"),
    ("tree: {file: x.json, approval: {by: a}}", "tree.approval must be"),
])
def test_malformed_router_settings_are_refused(tmp_path, block, message):
    text = ROUTING.read_text(encoding="utf-8")
    start, end = text.index("router: cascade\n"), text.index("  pins: {}\n") + len("  pins: {}\n")
    text = text[:start] + block + "\n" + text[end:]
    (tmp_path / "routing.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_routing(tmp_path / "routing.yml")


# ---- designer pins: a subtree sent to one route, or rejected back to the cascade ----
def test_a_pinned_subtree_routes_where_the_designer_said(workspace):
    from ops.routing_cli import set_pin

    routing = workspace / "routing.yml"
    set_router(routing, "tree", approval_for(workspace))
    tree = load_tree(workspace / "routing_tree.json")
    probe = {**dict.fromkeys(FEATURES, 0.0), "confidence": 0.25, "length": 9.0}
    clarify_leaf = tree.predict(probe).leaf
    assert tree.predict(probe).route == "clarify"
    assert set_pin(routing, clarify_leaf, "human") == {clarify_leaf: "human"}
    config = load_routing(routing)
    unsure = TurnSignals(intent="freeze_card", confidence=0.25)
    decision = decide_with_tree(unsure, TurnContext("卡的事"), config, tree, now=OPEN)
    assert decision.route == "human" and f"subtree {clarify_leaf} pinned" in decision.record["path"]
    assert f"[node {clarify_leaf}] PINNED → human" in rules_text(tree, pins=config.tree.pins)
    # rejected subtree: the cascade routes those turns, the record still says which subtree
    set_pin(routing, clarify_leaf, "cascade")
    config = load_routing(routing)
    decision = decide_with_tree(unsure, TurnContext("卡的事"), config, tree, now=OPEN)
    assert decision.record["router"] == "cascade" and decision.route == "clarify"
    assert "pinned by a designer" in decision.record["path"]
    # the guard rails still come first
    rail = decide_with_tree(TurnSignals(intent="insult", confidence=0.3), TurnContext("x"), config, tree, now=OPEN)
    assert rail.route == "senior"
    assert set_pin(routing, clarify_leaf, None) == {}


@pytest.mark.parametrize("node, route, message", [(999, "bot", "not in the tree"), (-1, "bot", "not in the tree"),
                                                  (0, "nowhere", "a pin sends turns")])
def test_a_bad_pin_is_refused(workspace, node, route, message):
    from ops.routing_cli import set_pin

    with pytest.raises(ConfigError, match=message):
        set_pin(workspace / "routing.yml", node, route)


@pytest.mark.parametrize("pins", ["{0: nowhere}", "{true: bot}", "{-1: bot}", "[0]", "{x: bot}"])
def test_malformed_pins_are_refused(tmp_path, pins):
    text = ROUTING.read_text(encoding="utf-8").replace("  pins: {}", f"  pins: {pins}")
    (tmp_path / "routing.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="tree.pins must map"):
        load_routing(tmp_path / "routing.yml")
