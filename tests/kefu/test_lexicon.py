"""The industry lexicon: terms from the knowledge base, one token per product name, regenerated on change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kefu.errors import BadInput
from kefu.lexicon import JIEBA_DIR, KNOWLEDGE_DIR, OUTPUT_NAME, collect_terms, tokenizer_for, write_lexicon
from ops import cli


@pytest.fixture()
def jieba_dir(tmp_path: Path) -> Path:
    """A copy of the project's hand-kept dictionary (the generated file goes beside it)."""
    d = tmp_path / "jieba"
    d.mkdir()
    shutil.copy(JIEBA_DIR / "kefu_terms.txt", d)
    return d


def test_terms_come_from_the_knowledge_base() -> None:
    terms = collect_terms()
    assert {"白金信用卡", "全币种旅行信用卡", "跨行转账手续费", "信用卡年费减免"} <= set(terms)
    assert terms["白金信用卡"] == "nz"
    assert "每天能转多少" not in terms and "一天能取多少" not in terms  # questions are not terms
    assert all(" " not in t and len(t) >= 2 for t in terms)


def test_product_name_stays_one_token(jieba_dir: Path) -> None:
    before = list(tokenizer_for(jieba_dir).cut("我想办全币种旅行信用卡"))
    assert "全币种旅行信用卡" not in before  # negative control: split without the generated terms
    result = write_lexicon(jieba_dir=jieba_dir)
    assert result.changed and result.terms > 100 and result.path == jieba_dir / OUTPUT_NAME
    tok = tokenizer_for(jieba_dir)
    for sentence, term in [("我想办全币种旅行信用卡", "全币种旅行信用卡"), ("白金信用卡年费多少", "白金信用卡"),
                           ("跨行转账手续费怎么收", "跨行转账手续费")]:
        assert term in list(tok.cut(sentence)), sentence


def test_rasa_jieba_tokenizer_loads_the_directory(jieba_dir: Path) -> None:
    """What the NLU pipeline does with `dictionary_path: data/lexicons/jieba` (every file in it)."""
    import jieba
    from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer

    write_lexicon(jieba_dir=jieba_dir)
    JiebaTokenizer._load_custom_dictionary(str(jieba_dir))
    assert "全币种旅行信用卡" in jieba.lcut("我想办全币种旅行信用卡")


def test_regenerated_when_knowledge_changes_and_stable_otherwise(jieba_dir: Path, tmp_path: Path) -> None:
    first = write_lexicon(jieba_dir=jieba_dir)
    again = write_lexicon(jieba_dir=jieba_dir)
    assert not again.changed and again.path.read_bytes() == first.path.read_bytes()
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, knowledge)
    (knowledge / "graph" / "new_cards.yml").write_text(
        "nodes:\n  - {id: credit_diamond, type: Product, kind: credit_card, name_zh: 钻石尊享信用卡, "
        "name_en: Diamond card, aliases: [钻石尊享卡]}\n", encoding="utf-8")
    changed = write_lexicon(knowledge_dir=knowledge, jieba_dir=jieba_dir)
    assert changed.changed and "钻石尊享信用卡" in changed.path.read_text(encoding="utf-8")
    assert "钻石尊享信用卡" in list(tokenizer_for(jieba_dir).cut("我要申请钻石尊享信用卡"))


def test_bad_knowledge_and_cli(jieba_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad"
    (bad / "graph").mkdir(parents=True)
    (bad / "graph" / "x.yml").write_text("nodes: [unclosed", encoding="utf-8")
    with pytest.raises(BadInput):
        collect_terms(bad)
    (bad / "graph" / "x.yml").write_text("- just a list\n- {type: Product, name_zh: 12}\n", encoding="utf-8")
    assert collect_terms(bad, tmp_path / "no-nlu") == {}  # wrong shapes are ignored, not crashed on
    assert cli.main(["lexicon", "--knowledge", str(tmp_path / "missing"), "--out-dir", str(jieba_dir)]) == 1
    assert cli.main(["lexicon", "--check", "--out-dir", str(jieba_dir)]) == 1  # never generated here
    assert cli.main(["lexicon", "--out-dir", str(jieba_dir)]) == 0
    assert cli.main(["lexicon", "--check", "--out-dir", str(jieba_dir)]) == 0
    assert "up to date" in capsys.readouterr().out
