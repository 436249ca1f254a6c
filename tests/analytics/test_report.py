"""`kefu report` on the hand-built fixture: files written, Chinese labels have glyphs, bad input refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analytics.charts import chart_missing_glyphs
from analytics.fonts import configure_matplotlib, missing_glyphs
from analytics.loader import Period, parse_since
from analytics.report import build_report, default_intent_groups
from kefu.errors import BadInput
from ops import cli
from tests.analytics.fixture_data import DAY, GROUPS, T0


@pytest.fixture(scope="module")
def report(fixture_db: str, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    # period = the fixture's week shifted so the "before" window holds sender e's day
    return build_report(fixture_db, Period(T0, T0 + 7 * DAY), out, groups=GROUPS)


def test_report_files(report) -> None:
    out: Path = report.out_dir
    assert (out / "index.html").is_file() and (out / "summary.txt").is_file()
    for chart in report.charts:
        png = (out / chart.file).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert f'src="{chart.file}"' in (out / "index.html").read_text(encoding="utf-8")
    with open(out / "csv" / "fcr.csv", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    assert float(row["fcr"]) == pytest.approx(0.75)
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert "首次解决率 FCR: 0.750" in summary
    assert "skipped 1 event rows with malformed JSON" in summary
    assert report.summary["conversations"] == 5
    # before/after: the previous week holds sender e (1 conversation, bot only)
    assert report.previous is not None and report.previous["conversations"] == 1
    assert "(before 1.000, Δ 4.000)" in summary


def test_chart_labels_have_glyphs(report) -> None:
    texts = [t for c in report.charts for t in c.texts]
    assert any("意图分布" in t for t in texts) and any("满意度" in t for t in texts)
    assert chart_missing_glyphs(report.charts) == set()
    assert not any("glyph" in note for note in report.notes)


def test_glyph_check_detects_a_box() -> None:
    name = configure_matplotlib()
    assert name == "Noto Sans SC" or "WenQuanYi" in name
    import matplotlib

    assert matplotlib.rcParams["axes.unicode_minus"] is False
    assert missing_glyphs(["客服满意度 CSAT −0.5"]) == set()
    assert missing_glyphs(["\ue000 private use"]) == {"\ue000"}  # negative control: the check can fail


def test_default_intent_groups_from_nlu_files() -> None:
    groups = default_intent_groups()
    assert groups["check_balance"] == "banking" and groups["order_status"] == "shop"
    assert groups["greet"] == "general"


@pytest.mark.parametrize("bad", ["", "7", "d", "-3d", "7w", "1" * 40 + "d", "7d; DROP TABLE events", "0d"])
def test_parse_since_rejects_bad_input(bad: str) -> None:
    with pytest.raises(BadInput):
        parse_since(bad)


def test_period_rejects_empty_window() -> None:
    with pytest.raises(BadInput):
        Period(10.0, 10.0)
    with pytest.raises(BadInput):
        Period(float("nan"), 10.0)


def test_cli_report_and_bad_arguments(fixture_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("KEFU_POSTGRES_URL", fixture_db)
    until = "2026-11-08T00:00:00+00:00"
    assert cli.main(["report", "--since", "7d", "--until", until, "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "report: " in out and (tmp_path / "r" / "index.html").is_file()
    assert cli.main(["report", "--since", "seven days", "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    assert "--since must look like" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["report", "--until", until, "--out", str(blocker), "--no-progress"]) == 1
    with pytest.raises(SystemExit):
        cli.main(["report", "--until", "not-a-date"])
