from pathlib import Path

import pytest

from kefu.config import load_settings, read_env_file
from kefu.errors import ConfigError


def test_defaults_without_any_variable(tmp_path):
    settings = load_settings({}, env_file=tmp_path / "missing.env")
    assert settings.postgres_url is None and settings.redis_url is None
    assert settings.rasa_port == 5005 and settings.actions_port == 5055
    assert settings.chat_url == "http://localhost:5005/chat/"


def test_environment_overrides_env_file_and_repr_hides_passwords(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nexport KEFU_RASA_PORT=6000\nKEFU_POSTGRES_URL='postgresql://u:s3cret@db/kefu'\n")
    settings = load_settings({"KEFU_RASA_PORT": "7000"}, env_file=env_file)
    assert settings.rasa_port == 7000
    assert settings.postgres_url == "postgresql://u:s3cret@db/kefu"
    assert "s3cret" not in repr(settings) and "u:***@db" in repr(settings)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"KEFU_RASA_PORT": "http"}, "KEFU_RASA_PORT must be a port number"),
        ({"KEFU_ACTIONS_PORT": "70000"}, "KEFU_ACTIONS_PORT must be between"),
        ({"KEFU_POSTGRES_URL": "mysql://x"}, "KEFU_POSTGRES_URL must start with"),
        ({"KEFU_REDIS_URL": "127.0.0.1:6379"}, "KEFU_REDIS_URL must start with"),
        ({"KEFU_MAX_MESSAGE_CHARS": "lots"}, "KEFU_MAX_MESSAGE_CHARS must be an integer"),
        ({"KEFU_MAX_MESSAGE_CHARS": "0"}, "KEFU_MAX_MESSAGE_CHARS must be positive"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env, env_file=tmp_path / "none")


def test_malformed_env_file_names_the_line(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("KEFU_HOST=0.0.0.0\nthis is not an assignment\n")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        read_env_file(env_file)
    assert read_env_file(Path(tmp_path / "absent")) == {}
