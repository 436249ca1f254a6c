import yaml

from kefu.config import load_settings
from ops.runner import child_env, write_endpoints


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
