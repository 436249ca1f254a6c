"""Business rules: the seed processes, edge cases of evaluation, validation errors and hot reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from knowledge.errors import BadInput, NotFound, ValidationFailed
from knowledge.rules import RuleBook, read_rules, validate_dir
from tests.knowledge.conftest_graph import RULES_DIR


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return RuleBook.from_dir(RULES_DIR)


def test_seed_has_at_least_five_processes() -> None:
    validate_dir(RULES_DIR)
    names = set(read_rules(RULES_DIR))
    assert {"return_eligibility", "card_replacement", "transfer_limit_change", "invoice_issuing"} <= names
    assert len(names) >= 5


@pytest.mark.parametrize(
    ("facts", "outcome", "rule"),
    [
        ({"status": "delivered", "days_since_delivery": 0}, "eligible_if_unused", "within_window_opened_unknown"),
        ({"status": "delivered", "days_since_delivery": 7, "opened": False}, "eligible", "within_window"),
        ({"status": "delivered", "days_since_delivery": 8, "opened": False}, "not_eligible", "window_passed"),
        (
            {"status": "delivered", "days_since_delivery": 8, "quality_issue": True},
            "eligible_quality",
            "quality_within_15_days",
        ),
        (
            {"status": "delivered", "days_since_delivery": 15, "quality_issue": True},
            "eligible_quality",
            "quality_within_15_days",
        ),
        (
            {"status": "delivered", "days_since_delivery": 16, "quality_issue": True},
            "not_eligible",
            "all_windows_passed",
        ),
        ({"status": "delivered", "days_since_delivery": 15, "opened": False}, "not_eligible", "window_passed"),
        (
            {"status": "delivered", "days_since_delivery": 2, "category": "cosmetics", "opened": True},
            "not_eligible",
            "hygiene_opened",
        ),
        (
            {"status": "delivered", "days_since_delivery": 2, "category": "cosmetics", "opened": False},
            "eligible",
            "within_window",
        ),
        (
            {"status": "delivered", "days_since_delivery": 1, "category": "fresh_food", "quality_issue": True},
            "eligible_refund",
            "fresh_quality_within_24h",
        ),
        (
            {"status": "delivered", "days_since_delivery": 2, "category": "fresh_food", "quality_issue": True},
            "not_eligible",
            "fresh_food",
        ),
        ({"status": "delivered", "days_since_delivery": 1, "category": "custom"}, "not_eligible", "custom_made"),
        (
            {"status": "delivered", "days_since_delivery": 1, "category": "custom", "quality_issue": True},
            "eligible_quality",
            "quality_within_15_days",
        ),
        (
            {"status": "delivered", "days_since_delivery": 1, "category": "digital_goods", "quality_issue": True},
            "not_eligible",
            "digital_goods",
        ),
        ({"status": "shipped"}, "cancel_instead", "not_delivered"),
        ({"status": "cancelled", "days_since_delivery": 1}, "not_applicable", "cancelled"),
        ({"status": "delivered"}, "needs_review", "default"),  # delivered but no date: a person checks
    ],
)
def test_return_eligibility_edges(book: RuleBook, facts: dict, outcome: str, rule: str) -> None:
    decision = book.evaluate("return_eligibility", facts, "zh")
    assert (decision.outcome, decision.rule) == (outcome, rule)
    assert decision.text and decision.because


def test_decision_explains_the_deciding_condition(book: RuleBook) -> None:
    zh = book.evaluate("return_eligibility", {"status": "delivered", "days_since_delivery": 12}, "zh")
    assert zh.because == "签收天数（12） > 7"
    assert "12天" in zh.text
    assert zh.checked[:3] == ["cancelled", "not_delivered", "digital_goods"]
    en = book.evaluate("return_eligibility", {"status": "delivered", "days_since_delivery": 12}, "en")
    assert en.because == "days since delivery (12) > 7" and "12 days ago" in en.text
    both = book.evaluate(
        "return_eligibility",
        {"status": "delivered", "days_since_delivery": 3, "category": "underwear", "opened": True},
        "en",
    )
    assert both.because == "category (underwear) is one of underwear, cosmetics and opened: yes"
    missing = book.evaluate("card_replacement", {"reason": "lost", "card_type": "debit"}, "zh")
    assert missing.because == "补换卡原因（遗失） 属于 遗失、被盗 且 并非（已挂失（未知） = 是）"


def test_evaluation_is_deterministic(book: RuleBook) -> None:
    facts = {"status": "delivered", "days_since_delivery": 5, "category": "books"}
    assert len({repr(book.evaluate("return_eligibility", facts, "en")) for _ in range(20)}) == 1


@pytest.mark.parametrize(
    ("process", "facts", "outcome"),
    [
        ("card_replacement", {"reason": "lost", "card_type": "debit"}, "freeze_first"),
        ("card_replacement", {"reason": "lost", "card_type": "debit", "reported": True}, "branch_replacement"),
        ("card_replacement", {"reason": "stolen", "card_type": "credit", "reported": True}, "mailed_replacement"),
        ("card_replacement", {"reason": "swallowed", "card_type": "debit"}, "retrieve_card"),
        ("transfer_limit_change", {"requested_daily_limit": 50000}, "app_sms"),
        ("transfer_limit_change", {"requested_daily_limit": 50000.01}, "app_face"),
        ("transfer_limit_change", {"requested_daily_limit": 20000, "account_class": "class_ii"}, "not_allowed"),
        ("transfer_limit_change", {"requested_daily_limit": 300000}, "branch"),
        ("transfer_limit_change", {"requested_daily_limit": 300000, "has_ukey": True}, "online_banking_ukey"),
        ("transfer_limit_change", {"requested_daily_limit": 600000, "has_ukey": True}, "not_allowed"),
        ("invoice_issuing", {"status": "delivered", "days_since_delivery": 3}, "eligible"),
        ("invoice_issuing", {"status": "delivered", "days_since_delivery": 181}, "expired"),
        ("invoice_issuing", {"status": "delivered", "invoice_type": "vat_special"}, "needs_tax_details"),
        (
            "invoice_issuing",
            {"status": "delivered", "invoice_type": "vat_special", "has_tax_id": True},
            "eligible_paper",
        ),
        ("invoice_issuing", {"status": "shipped"}, "after_delivery"),
        ("annual_fee_waiver", {"card": "gold", "purchases_this_year": 6}, "waived"),
        ("annual_fee_waiver", {"card": "gold", "purchases_this_year": 5}, "fee_due"),
        ("annual_fee_waiver", {"card": "platinum", "spend_this_year": 150000, "points": 25000}, "redeem_points"),
        ("refund_timeline", {"payment_method": "wallet", "refund_approved": True}, "instant"),
        (
            "refund_timeline",
            {"payment_method": "credit_card", "refund_approved": True, "days_since_approval": 9},
            "overdue",
        ),
    ],
)
def test_other_processes(book: RuleBook, process: str, facts: dict, outcome: str) -> None:
    assert book.evaluate(process, facts, "en").outcome == outcome


def test_steps_come_in_the_customers_language(book: RuleBook) -> None:
    zh = book.evaluate("card_replacement", {"reason": "lost", "card_type": "credit"}, "zh")
    en = book.evaluate("card_replacement", {"reason": "lost", "card_type": "credit"}, "en")
    assert len(zh.steps) == len(en.steps) == 3 and "95555" in zh.steps[0] and "95555" in en.steps[0]


@pytest.mark.parametrize(
    "facts",
    [
        {},  # required fact missing
        {"status": "lost_in_space"},
        {"status": "delivered", "days_since_delivery": -1},
        {"status": "delivered", "days_since_delivery": "7"},
        {"status": "delivered", "days_since_delivery": True},
        {"status": "delivered", "opened": "yes"},
        {"status": "delivered", "unknown_fact": 1},
        {"status": "delivered", "category": "x" * 10_000},
        {"status": "delivered", "days_since_delivery": 10**12},
        ["status", "delivered"],
    ],
)
def test_bad_facts_are_refused(book: RuleBook, facts: object) -> None:
    with pytest.raises(BadInput):
        book.evaluate("return_eligibility", facts, "zh")  # type: ignore[arg-type]


def test_unknown_process(book: RuleBook) -> None:
    with pytest.raises(NotFound):
        book.evaluate("launch_rocket", {}, "zh")


def test_templates_only_substitute_fact_values(rules_dir: Path) -> None:
    """A fact value is inserted as text: no attribute access, no format specs, no second expansion."""
    doc = yaml.safe_load((rules_dir / "refund_timeline.yml").read_text(encoding="utf-8"))
    doc["default"]["say"]["en"] = "{payment_method.__class__} {payment_method} {0} {}"
    (rules_dir / "refund_timeline.yml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    process = RuleBook.from_dir(rules_dir).get("refund_timeline")
    filled = process.fill(doc["default"]["say"]["en"], {"payment_method": "{refund_approved}"}, "en")
    assert filled == "{payment_method.__class__} {refund_approved} {0} {}"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    stat = path.stat()  # make sure the change is visible even on coarse-mtime file systems
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_hot_reload_picks_up_an_edit(rules_dir: Path) -> None:
    book = RuleBook.from_dir(rules_dir, check_interval=0)
    facts = {"status": "delivered", "days_since_delivery": 10}
    assert book.evaluate("return_eligibility", facts).outcome == "not_eligible"
    _edit(
        rules_dir / "return_eligibility.yml",
        "{fact: days_since_delivery, gt: 7}",
        "{fact: days_since_delivery, gt: 14}",
    )
    _edit(
        rules_dir / "return_eligibility.yml",
        "{fact: days_since_delivery, lte: 7}",
        "{fact: days_since_delivery, lte: 14}",
    )
    decision = book.evaluate("return_eligibility", facts)
    assert decision.outcome == "eligible_if_unused" and book.reloads == 1


def test_broken_edit_keeps_the_previous_rules(rules_dir: Path) -> None:
    book = RuleBook.from_dir(rules_dir, check_interval=0)
    version = book.version
    _edit(
        rules_dir / "return_eligibility.yml",
        "{fact: days_since_delivery, gt: 7}",
        "{fact: days_since_delivery, gt: seven}",
    )
    decision = book.evaluate("return_eligibility", {"status": "delivered", "days_since_delivery": 10})
    assert decision.outcome == "not_eligible"  # old rules still in force
    assert book.last_error is not None and "return_eligibility.yml" in str(book.last_error)
    assert book.version == version
    _edit(rules_dir / "return_eligibility.yml", "gt: seven", "gt: 30")  # fixed: the new version takes over
    # 10 days: no longer past the (now 30-day) window, not within the 7-day rules either -> default
    assert book.evaluate("return_eligibility", {"status": "delivered", "days_since_delivery": 10}).rule == "default"
    assert book.last_error is None and book.version != version


def test_new_and_deleted_files_are_noticed(rules_dir: Path) -> None:
    book = RuleBook.from_dir(rules_dir, check_interval=0)
    (rules_dir / "refund_timeline.yml").unlink()
    with pytest.raises(NotFound):
        book.evaluate("refund_timeline", {"payment_method": "wallet", "refund_approved": True})
    (rules_dir / "copy.yml").write_text(
        (rules_dir / "card_replacement.yml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    book.refresh()
    assert book.last_error is not None and "also defined" in str(book.last_error)


def test_check_interval_throttles_the_file_checks(rules_dir: Path) -> None:
    book = RuleBook.from_dir(rules_dir, check_interval=3600)
    (rules_dir / "refund_timeline.yml").unlink()
    assert "refund_timeline" in book.processes()  # not re-read within the interval
    assert book.refresh(force=True) and "refund_timeline" not in book.processes()


BROKEN = {
    "missing keys": "process: x\nversion: 1\n",
    "bad operator": "{fact: days_since_delivery, about: 7}",
    "two operators": "{fact: days_since_delivery, gt: 7, lt: 9}",
    "undeclared fact": "{fact: weather, eq: sunny}",
    "type mismatch": "{fact: days_since_delivery, eq: seven}",
    "order on a string": "{fact: status, gt: 3}",
    "not yaml": "process: [unclosed",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validation_errors_name_file_and_field(rules_dir: Path, case: str) -> None:
    path = rules_dir / "return_eligibility.yml"
    if case in ("missing keys", "not yaml"):
        path.write_text(BROKEN[case], encoding="utf-8")
    else:
        _edit(path, "{fact: days_since_delivery, gt: 7}", BROKEN[case])
    with pytest.raises(ValidationFailed) as caught:
        validate_dir(rules_dir)
    assert all(where.startswith("return_eligibility.yml") for where, _ in caught.value.problems)
    with pytest.raises(ValidationFailed):
        RuleBook.from_dir(rules_dir)


def test_undeclared_template_and_duplicate_ids(rules_dir: Path) -> None:
    path = rules_dir / "card_replacement.yml"
    _edit(path, "- id: expired", "- id: swallowed")
    _edit(path, "say: {zh: 请先立即挂失冻结卡片，再办理补卡。", "say: {zh: '请先{secret}挂失。'")
    with pytest.raises(ValidationFailed) as caught:
        validate_dir(rules_dir)
    text = str(caught.value)
    assert "duplicate rule id" in text and "{secret}" in text


def test_empty_oversized_and_missing_directories(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed):
        validate_dir(tmp_path)
    with pytest.raises(ValidationFailed):
        validate_dir(tmp_path / "missing")
    (tmp_path / "big.yml").write_text("# x\n" * 200_000, encoding="utf-8")
    with pytest.raises(ValidationFailed, match="larger than"):
        validate_dir(tmp_path)
    (tmp_path / "big.yml").write_text("", encoding="utf-8")
    with pytest.raises(ValidationFailed):
        validate_dir(tmp_path)


def test_unchanged_files_are_not_reloaded(rules_dir: Path) -> None:
    book = RuleBook.from_dir(rules_dir, check_interval=0)
    for _ in range(50):
        book.evaluate("return_eligibility", {"status": "delivered", "days_since_delivery": 3})
    assert book.reloads == 0


def test_value_labels_must_name_enum_values(rules_dir: Path) -> None:
    _edit(rules_dir / "card_replacement.yml", "value_labels: {lost: {zh: 遗失", "value_labels: {lots: {zh: 遗失")
    with pytest.raises(ValidationFailed, match="'lots' not in enum"):
        validate_dir(rules_dir)


def test_the_designers_example_in_the_readme_is_valid(tmp_path: Path) -> None:
    readme = (RULES_DIR / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yml").write_text(example, encoding="utf-8")
    book = RuleBook.from_dir(tmp_path)
    decision = book.evaluate("return_eligibility", {"days_since_delivery": 3, "category": "clothing"}, "zh")
    assert decision.outcome == "eligible" and decision.text == "签收3天，可以退货。"
    assert (
        book.evaluate("return_eligibility", {"category": "custom"}, "en").because
        == "category (made-to-order) = made-to-order"
    )
