from ops import modelbuild


def test_fingerprint_follows_content_and_names(tmp_path, monkeypatch):
    monkeypatch.setattr(modelbuild, "PROJECT_ROOT", tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text("a")
    inputs = [tmp_path / "data", tmp_path / "config.yml"]
    first = modelbuild.fingerprint(inputs)
    assert modelbuild.fingerprint(inputs) == first
    (tmp_path / "config.yml").write_text("pipeline: []")
    second = modelbuild.fingerprint(inputs)
    assert second != first
    (tmp_path / "data" / "nlu.yml").write_text("b")
    assert modelbuild.fingerprint(inputs) != second


def test_real_inputs_exist():
    for path in modelbuild.INPUTS:
        assert path.exists() or "models" in path.parts, path
