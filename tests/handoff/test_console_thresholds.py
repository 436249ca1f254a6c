"""The supervisor's thresholds panel: `/api/thresholds` on a real console process reading the plan of a tiny
IntentModel archived like a Rasa model (no model, a model without plan, a damaged plan), and the summary's
type checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import requests

from handoff.console.plan import plan_summary
from kefu.config import load_settings
from kefu.modelplan import model_path
from ops.console import console_config
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import login
from tests.kefu.plan_fixtures import archive_model, archive_without_plan, tiny_model

console = console_fixtures.console
rasa_api = console_fixtures.rasa_api
servers = pytest.mark.servers
pytestmark = [pytest.mark.timeout(240)]


def model_file(console) -> Path:
    """Where this console looks: KEFU_MODEL_DIR/kefu.tar.gz, like `kefu run`."""
    return Path(console.env["KEFU_MODEL_DIR"]) / "kefu.tar.gz"


def test_console_reads_the_model_kefu_run_serves(tmp_path):
    env = {"KEFU_VAR_DIR": str(tmp_path), "KEFU_POSTGRES_URL": "postgresql://db/x", "KEFU_MODEL_DIR": str(tmp_path)}
    settings = load_settings(env, env_file=tmp_path / "none.env")
    assert console_config(settings).model_path == model_path(settings) == tmp_path / "kefu.tar.gz"


@servers
def test_thresholds_are_for_supervisors_only(console):
    assert requests.get(console.url + "/api/thresholds").status_code == 401
    for name in ("alice", "sara"):  # agent, senior
        resp = login(console, name).get("/api/thresholds")
        assert resp.status_code == 403 and resp.json() == {"detail": "supervisors only"}
        assert resp.headers["Cache-Control"] == "no-store"
    assert login(console, "vera").get("/api/thresholds").status_code in (200, 404)


@servers
def test_supervisor_page_has_the_panel_in_both_languages(console):
    vera = login(console, "vera")
    zh = vera.get("/supervisor?lang=zh").text
    en = vera.get("/supervisor?lang=en").text
    assert 'id="thresholds"' in zh and "路由阈值" in zh and "th_band_auto" in zh
    assert 'id="thresholds"' in en and "Routing thresholds" in en


@servers
def test_no_model_no_plan_damaged_plan_then_a_real_plan(console):
    path = model_file(console)
    path.unlink(missing_ok=True)
    vera = login(console, "vera")
    resp = vera.get("/api/thresholds")
    assert resp.status_code == 404, resp.text
    assert str(path) in resp.json()["detail"] and "make model" in resp.json()["detail"]

    archive_without_plan(path)
    resp = vera.get("/api/thresholds")
    assert resp.status_code == 404 and "no calibration.json" in resp.json()["detail"], resp.text
    assert str(path) in resp.json()["detail"]

    archive_model(path, plan="{oops")
    resp = vera.get("/api/thresholds")
    assert resp.status_code == 500 and str(path) in resp.json()["detail"], resp.text

    model = tiny_model()
    archive_model(path, model)  # replaced while the console runs: read again
    resp = vera.get("/api/thresholds")
    assert resp.status_code == 200, resp.text
    assert "NaN" not in resp.text
    got, plan = resp.json(), model.plan
    th, cal = plan["thresholds"], plan["calibration"]
    assert got["model"]["path"] == str(path) and got["model"]["file"] == "kefu.tar.gz"
    assert got["model"]["bytes"] == path.stat().st_size and got["model"]["modified_at"]
    assert got["mode"] == "targets"
    assert got["targets"] == {"auto_precision": 0.9, "specialist_precision": 0.6, "min_band_support": 5}
    assert got["auto"] == pytest.approx(th["auto"]) and got["specialist"] == pytest.approx(th["specialist"])
    assert got["source"] == th["source"] == {"auto": "target", "specialist": "target"}
    for band in ("auto", "specialist", "below"):
        assert got["bands"][band]["support"] == th["bands"][band]["support"]
        assert got["bands"][band]["coverage"] == pytest.approx(th["bands"][band]["coverage"])
    assert [i["intent"] for i in got["intents"]] == ["intent_0", "intent_1", "intent_2"]
    one = got["intents"][1]
    assert (one["auto"], one["specialist"], one["source"]) == (0.95, 0.5, {"auto": "number", "specialist": "number"})
    assert one["bands"]["auto"] == {"coverage": 0.0, "accuracy": None, "support": 0}  # NaN in the file
    assert got["intents"][2]["source"]["specialist"] == "fallback"
    assert got["warnings"] == th["warnings"] and len(got["warnings"]) == 1
    assert got["oos"]["threshold"] == pytest.approx(plan["oos"]["threshold"])
    assert got["oos"]["method"] == plan["oos"]["method"]
    assert got["calibration"]["method"] == "temperature"
    assert got["calibration"]["ece_before"] == pytest.approx(cal["before"]["ece"])
    assert got["calibration"]["ece_after"] == pytest.approx(cal["after"]["ece"])
    assert (got["calibration"]["examples"], got["calibration"]["folds"]) == (60, 5)
    assert got["data"]["examples"] == 60 and got["data"]["routing_file"] == "data/routing.yml"
    assert vera.get("/api/thresholds").json() == got  # cached until the file changes

    path.unlink()
    assert vera.get("/api/thresholds").status_code == 404


def test_summary_of_a_malformed_plan_has_nulls_not_errors():
    odd = {
        "thresholds": {"mode": 7, "auto": "0.9", "specialist": float("inf"), "source": ["x"], "bands": [],
                       "intents": {"a": 5, "b": {"auto": True, "support": -3, "bands": {"auto": "x"}}},
                       "warnings": "not a list", "targets": None, "data": {"x": [1], "n": 3, "s": "y" * 9000}},
        "calibration": {"method": "temperature", "before": 1, "after": {"ece": float("nan")}},
        "oos": {"threshold": "high"},
    }
    got = plan_summary(odd, {"path": "m"})
    assert got["mode"] == "7" and got["auto"] is None and got["specialist"] is None
    assert got["source"] == {"auto": None, "specialist": None}
    assert got["bands"]["auto"] == {"coverage": None, "accuracy": None, "support": None}
    assert [i["intent"] for i in got["intents"]] == ["a", "b"]
    assert got["intents"][1]["auto"] is None and got["intents"][1]["support"] is None
    assert got["warnings"] == [] and got["targets"]["auto_precision"] is None
    assert got["data"] == {"x": None, "n": 3, "s": "y" * 500}
    assert got["calibration"]["ece_before"] is None and got["calibration"]["ece_after"] is None
    assert got["oos"]["threshold"] is None
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(got))
    assert plan_summary({"thresholds": {}}, {})["oos"] is None and plan_summary({}, {})["calibration"] is None


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value
