import yaml

from kefu.config import ACTIONS_SECRET_HEADER, load_settings
from ops.quiet import with_rasa_token
from ops.runner import STABLE_AFTER, Child, child_env, write_endpoints


def test_endpoints_without_redis_use_the_in_memory_lock_store(tmp_path):
    settings = load_settings({"KEFU_ACTIONS_PORT": "6055"}, env_file=tmp_path / "none")
    path = write_endpoints(settings, "postgresql://postgres:@/kefu?host=/tmp/sock", tmp_path / "endpoints.yml")
    doc = yaml.safe_load(path.read_text())
    assert doc["action_endpoint"]["url"] == "http://127.0.0.1:6055/webhook"
    assert doc["tracker_store"]["type"] == "SQL"
    assert doc["tracker_store"]["url"].startswith("postgresql://postgres:@/kefu?host=")
    assert "lock_store" not in doc
    assert path.stat().st_mode & 0o777 == 0o600


def test_endpoints_with_redis_use_a_redis_lock_store(tmp_path):
    settings = load_settings({"KEFU_REDIS_URL": "redis://:pw@10.0.0.5:6380/3"}, env_file=tmp_path / "none")
    doc = yaml.safe_load(write_endpoints(settings, "postgresql://h/kefu", tmp_path / "e.yml").read_text())
    assert doc["lock_store"] == {
        "type": "redis", "url": "10.0.0.5", "port": 6380, "db": 3, "password": "pw", "key_prefix": "kefu"
    }


def test_child_environment_is_offline_and_quiet(tmp_path):
    env = child_env(load_settings({}, env_file=tmp_path / "none"))
    assert env["RASA_TELEMETRY_ENABLED"] == "false"
    assert env["HF_HUB_OFFLINE"] == "1"


def test_endpoints_carry_the_action_server_secret_header(tmp_path):
    settings = load_settings({}, env_file=tmp_path / "none")
    doc = yaml.safe_load(write_endpoints(settings, "postgresql://h/kefu", tmp_path / "e.yml", "s3cret").read_text())
    assert doc["action_endpoint"] == {
        "url": f"http://127.0.0.1:{settings.actions_port}/webhook", "headers": {ACTIONS_SECRET_HEADER: "s3cret"}
    }


def test_restart_backoff_doubles_to_a_cap_and_starts_over_after_a_stable_run():
    child = Child("actions", proc=None, started=0.0)  # type: ignore[arg-type]
    delays = []
    for _ in range(8):
        delays.append(child.crashed(child.started + 1.0))
        child.started = child.restart_at
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert child.crashed(child.started + STABLE_AFTER) == 1.0


def test_the_rasa_token_is_added_inside_the_process(monkeypatch):
    monkeypatch.setenv("KEFU_RASA_TOKEN", "tok")
    args = ["rasa", "run", "--model", "m", "--enable-api"]
    assert with_rasa_token(args) == [*args, "--auth-token=tok"]
    assert with_rasa_token(["rasa", "run", "--model", "m"]) == ["rasa", "run", "--model", "m"]
    assert with_rasa_token(["rasa_sdk", "--port", "1"]) == ["rasa_sdk", "--port", "1"]


def test_a_token_starting_with_a_dash_reaches_rasa_intact(monkeypatch):
    """CI saw `rasa run` exit with code 2: a generated token began with "-" and argparse took it
    for an option. Rasa's own parser must read the token exactly as configured."""
    from rasa.__main__ import create_argument_parser

    monkeypatch.setenv("KEFU_RASA_TOKEN", "-Xq_9-abc")
    args = with_rasa_token(["rasa", "run", "--model", "m", "--enable-api"])
    parsed = create_argument_parser().parse_args(args[1:])
    assert parsed.auth_token == "-Xq_9-abc"
    assert with_rasa_token(["rasa", "run", "--enable-api", "--auth-token=given"])[-1] == "--auth-token=given"
    assert with_rasa_token(["rasa", "run", "--enable-api", "-t", "given"])[-2:] == ["-t", "given"]


def test_a_child_that_dies_at_start_is_explained_by_its_log_tail(tmp_path):
    from ops.runner import log_tail

    log = tmp_path / "rasa.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "rasa run: error: bad argument\n", encoding="utf-8")
    tail = log_tail(log, lines=3)
    assert tail.splitlines() == ["  | line 98", "  | line 99", "  | rasa run: error: bad argument"]
    assert log_tail(tmp_path / "missing.log") == ""
    (tmp_path / "empty.log").write_bytes(b"")
    assert log_tail(tmp_path / "empty.log") == ""
