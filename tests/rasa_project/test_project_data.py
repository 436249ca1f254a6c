"""The Rasa project itself: data validates, every intent has enough zh and en examples,
and the test stories pass 100 % with `rasa test core`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from kefu.config import PROJECT_ROOT
from tests.servers import require_model

RASA = PROJECT_ROOT / "rasa_project"
ANNOTATION = re.compile(r"\[([^\]]+)\]\([^)]+\)")
ENV = {"RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}


def examples() -> Counter:
    counts: Counter = Counter()
    for path in (RASA / "data" / "nlu").glob("*_*.yml"):
        language = path.stem.rsplit("_", 1)[1]
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in block:
                lines = [line for line in block["examples"].splitlines() if line.strip()]
                counts[(block["intent"], language)] += len(lines)
    return counts


def test_each_intent_has_at_least_15_chinese_and_15_english_examples():
    domain = yaml.safe_load((RASA / "domain" / "core.yml").read_text(encoding="utf-8"))
    counts = examples()
    assert len(domain["intents"]) >= 30
    for intent in domain["intents"]:
        assert counts[(intent, "zh")] >= 15 and counts[(intent, "en")] >= 15, intent


def test_no_example_is_repeated_within_the_data():
    seen: dict[str, str] = {}
    for path in (RASA / "data" / "nlu").glob("*_*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            for line in block.get("examples", "").splitlines():
                text = ANNOTATION.sub(lambda m: m.group(1), line.strip()[2:]).lower()
                assert text not in seen or seen[text] == block["intent"], (text, seen.get(text), block["intent"])
                seen[text] = block.get("intent", "")


def rasa(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rasa", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=timeout, env={**ENV, "HOME": str(Path.home())},
    )


def test_rasa_data_validate_has_no_errors_or_conflicts():
    result = rasa("data", "validate", "--domain", "rasa_project/domain", "--data", "rasa_project/data",
                  "--config", "rasa_project/config.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No story structure conflicts found" in result.stdout + result.stderr


def test_test_stories_all_pass(tmp_path):
    model = require_model()
    stories = sorted((RASA / "tests").glob("test_stories*.yml"))
    count = sum(len(yaml.safe_load(p.read_text(encoding="utf-8"))["stories"]) for p in stories)
    assert count >= 25
    result = rasa("test", "core", "--stories", str(RASA / "tests"), "--model", str(model), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "story_report.json").read_text())
    failed_file = tmp_path / "failed_test_stories.yml"
    failed = failed_file.read_text() if failed_file.exists() else ""
    assert report["conversation_accuracy"]["accuracy"] == pytest.approx(1.0), failed[:4000]
