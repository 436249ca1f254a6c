"""`kefu thresholds` on a real plan (a tiny IntentModel archived like a Rasa model) and on every way a
model can lack one; the plan printed after `kefu train`."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kefu.config import PROJECT_ROOT, load_settings
from kefu.intent_head import json_safe
from kefu.modelplan import load_model_plan
from kefu.thresholds import MAX_PLAN_BYTES, NoPlan, format_plan
from ops import cli, modelbuild
from ops.modelbuild import summary_line
from tests.kefu.plan_fixtures import NODE, archive_model, archive_without_plan, tiny_model, write_archive


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def archive(model, tmp_path_factory) -> Path:
    return archive_model(tmp_path_factory.mktemp("model") / "kefu.tar.gz", model)


def stored(model) -> dict:
    """The plan as calibration.json holds it (an empty band's NaN accuracy is stored as null)."""
    return json.loads(json.dumps(json_safe(model.plan)))


def test_prints_the_training_table(archive, model, capsys):
    assert cli.main(["thresholds", "--model", str(archive)]) == 0
    out = capsys.readouterr().out
    assert out == f"Model: {archive}\n{format_plan(stored(model))}\n"
    th = model.plan["thresholds"]
    assert f"{th['auto']:.3f}" in out and "intent intent_2" in out and "WARNING: intent_thresholds.intent_2" in out


def test_json_is_the_stored_plan_with_nan_as_null(archive, model, capsys):
    assert cli.main(["thresholds", "--model", str(archive), "--json"]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out
    printed = json.loads(out)
    assert printed == json_safe(stored(model))
    assert printed["thresholds"]["intents"]["intent_1"]["bands"]["auto"]["accuracy"] is None  # an empty band
    assert printed["thresholds"]["auto"] == pytest.approx(model.plan["thresholds"]["auto"])


def test_default_model_is_the_one_kefu_run_serves(archive, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEFU_MODEL_DIR", str(tmp_path))
    assert modelbuild.model_path(load_settings()) == tmp_path / "kefu.tar.gz"
    assert cli.main(["thresholds"]) == 1
    assert str(tmp_path / "kefu.tar.gz") in capsys.readouterr().err
    (tmp_path / "kefu.tar.gz").write_bytes(archive.read_bytes())
    assert cli.main(["thresholds"]) == 0
    assert capsys.readouterr().out.startswith(f"Model: {tmp_path / 'kefu.tar.gz'}\nCalibration: temperature")


def _truncated(path: Path, archive: Path) -> None:
    data = archive.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _plan_of_size(path: Path) -> None:
    """A valid JSON plan just over the limit: read_plan skips it, the message must not say "no plan"."""
    content = b'{"thresholds": {}, "pad": "' + b" " * MAX_PLAN_BYTES + b'"}'
    write_archive(path, {f"components/{NODE}/calibration.json": content})


def _gzip_of_text(path: Path) -> None:
    path.write_bytes(gzip.compress(b"not a tar archive\n" * 100))


BAD_MODELS = {
    "missing": (lambda p, a: None, ["no such model file", "make model"], NoPlan),
    "empty file": (lambda p, a: p.write_bytes(b""), ["not a model archive"], None),
    "text file": (lambda p, a: p.write_text("hello\n"), ["not a model archive"], None),
    "gzip, not tar": (lambda p, a: _gzip_of_text(p), ["not a model archive"], None),
    "truncated": (_truncated, ["cannot read"], None),
    "no plan": (lambda p, a: archive_without_plan(p), ["no calibration.json", "trained before calibration"], NoPlan),
    "plan not JSON": (lambda p, a: archive_model(p, plan="{oops"), ["cannot read"], None),
    "plan not UTF-8": (lambda p, a: archive_model(p, plan=b"\xff\xfe{}"), ["cannot read"], None),
    "plan a list": (lambda p, a: archive_model(p, plan=[1, 2]), ["not a threshold plan"], None),
    "plan without thresholds": (lambda p, a: archive_model(p, plan={"calibration": {"method": "none"}}),
                                ["not a threshold plan"], None),
    "plan malformed": (lambda p, a: archive_model(p, plan={"thresholds": {"auto": "high", "mode": "numbers"}}),
                       ["malformed"], None),
    "plan nested too deep": (lambda p, a: archive_model(p, plan="[" * 100_000 + "]" * 100_000), ["cannot read"],
                             None),
    "plan oversized": (lambda p, a: _plan_of_size(p), ["bytes, more than", "calibration.json"], None),
}


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_bad_models_fail_with_the_file_named(case, archive, tmp_path, capsys):
    make, words, kind = BAD_MODELS[case]
    path = tmp_path / "kefu.tar.gz"
    make(path, archive)
    assert cli.main(["thresholds", "--model", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"kefu: {path}: ") and err.count("\n") == 1, err[:500]
    for word in words:
        assert word in err, err[:500]
    assert len(err) < 1000
    if kind is not None:
        with pytest.raises(kind):
            load_model_plan(path)


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_model_path(value, capsys):
    assert cli.main(["thresholds", "--model", value]) == 1
    assert "model path is empty" in capsys.readouterr().err


def test_unpacked_model_directory(model, tmp_path, capsys):
    node = tmp_path / "components" / NODE
    node.mkdir(parents=True)
    model.save(node)
    assert load_model_plan(tmp_path) == stored(model)
    (node / "calibration.json").write_text("{oops")
    assert cli.main(["thresholds", "--model", str(tmp_path)]) == 1
    assert f"kefu: {tmp_path}: cannot read" in capsys.readouterr().err


def test_the_command_exits_1_without_a_traceback(tmp_path):
    missing = tmp_path / "nope.tar.gz"
    proc = subprocess.run([sys.executable, "-m", "ops", "thresholds", "--model", str(missing)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{missing}: no such model file" in proc.stderr


# --- kefu train prints the plan ----------------------------------------------------------------


def test_train_prints_the_table_after_training_and_a_line_when_up_to_date(model, tmp_path, monkeypatch, capsys):
    settings = load_settings({"KEFU_MODEL_DIR": str(tmp_path), "KEFU_VAR_DIR": str(tmp_path / "var")},
                             env_file=tmp_path / "none.env")
    monkeypatch.setattr(modelbuild, "fingerprint", lambda: "f" * 64)
    runs = []

    def fake_rasa_train(args, **kw):
        runs.append(args)
        archive_model(Path(args[args.index("--out") + 1]) / "kefu.tar.gz", model)
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(modelbuild.subprocess, "run", fake_rasa_train)
    assert modelbuild.train(settings) == tmp_path / "kefu.tar.gz"
    out = capsys.readouterr().out
    assert len(runs) == 1 and out.rstrip("\n").endswith(format_plan(stored(model)))

    assert modelbuild.train(settings) == tmp_path / "kefu.tar.gz"  # up to date: no training, one line
    out = capsys.readouterr().out.splitlines()
    assert len(runs) == 1 and len(out) == 2 and "skipping training" in out[0]
    assert out[1] == summary_line(stored(model))
    th = model.plan["thresholds"]
    assert out[1] == (f"Routing thresholds (targets): auto {th['auto']:.3f}, specialist {th['specialist']:.3f}, "
                      "1 warning; `kefu thresholds` prints the table.")


def test_train_of_a_model_without_plan_still_succeeds(tmp_path, monkeypatch, capsys):
    settings = load_settings({"KEFU_MODEL_DIR": str(tmp_path)}, env_file=tmp_path / "none.env")
    monkeypatch.setattr(modelbuild, "fingerprint", lambda: "f" * 64)

    def fake_rasa_train(args, **kw):
        archive_without_plan(tmp_path / "kefu.tar.gz")
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(modelbuild.subprocess, "run", fake_rasa_train)
    modelbuild.train(settings)
    assert capsys.readouterr().out.splitlines()[-1].startswith("No routing threshold plan to show: ")


def test_summary_line_of_an_odd_plan():
    assert summary_line({"thresholds": {"mode": "numbers", "auto": None, "specialist": float("nan")}}) == (
        "Routing thresholds (numbers): auto -, specialist -; `kefu thresholds` prints the table.")


def test_real_model_if_trained():
    """The project's model, when `make model` has run (read only)."""
    path = PROJECT_ROOT / "models" / "kefu.tar.gz"
    try:
        plan = load_model_plan(path)
    except NoPlan:
        pytest.skip("no trained model, or it predates calibration")
    assert plan["thresholds"]["mode"] in ("targets", "numbers")
    assert format_plan(plan).startswith("Calibration:")
