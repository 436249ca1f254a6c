"""Console settings come from kefu.config; a bad adapter setup fails at start with the variable's name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kefu.config import PROJECT_ROOT, load_settings
from kefu.errors import ConfigError
from ops.console import console_config


def settings(tmp_path, **env):
    return load_settings({"KEFU_VAR_DIR": str(tmp_path), **env}, env_file=tmp_path / "none.env")


def test_defaults_and_database(tmp_path):
    s = settings(tmp_path, KEFU_POSTGRES_URL="postgresql://u:pw@db:5432")
    assert s.console_port == 5080 and s.handoff_adapter == "console" and s.console_secure_cookies is None
    config = console_config(s)
    assert config.postgres_url == "postgresql://u:pw@db:5432/kefu" and config.rasa_url == "http://127.0.0.1:5005"
    assert "pw" not in repr(config) and "pw" not in repr(s)


def test_token_file_is_used_when_no_token_is_configured(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "rasa_token").write_text("tok-123\n")
    assert console_config(settings(tmp_path, KEFU_POSTGRES_URL="postgresql://db/x")).rasa_token == "tok-123"


@pytest.mark.parametrize("env,match", [
    ({"KEFU_CONSOLE_PORT": "99999"}, "KEFU_CONSOLE_PORT"),
    ({"KEFU_CONSOLE_PORT": "web"}, "KEFU_CONSOLE_PORT"),
])
def test_bad_port_is_a_config_error(tmp_path, env, match):
    with pytest.raises(ConfigError, match=match):
        settings(tmp_path, **env)


@pytest.mark.parametrize("env,match", [
    ({}, "KEFU_POSTGRES_URL"),
    ({"KEFU_POSTGRES_URL": "postgresql://db/x", "KEFU_HANDOFF_ADAPTER": "teams"}, "KEFU_HANDOFF_ADAPTER"),
    ({"KEFU_POSTGRES_URL": "postgresql://db/x", "KEFU_HANDOFF_ADAPTER": "slack", "KEFU_SLACK_CHANNEL": "C1"},
     "KEFU_SLACK_BOT_TOKEN"),
    ({"KEFU_POSTGRES_URL": "postgresql://db/x", "KEFU_HANDOFF_ADAPTER": "chatwoot"}, "KEFU_CHATWOOT_URL"),
])
def test_missing_or_bad_settings_name_the_variable(tmp_path, env, match):
    with pytest.raises(ConfigError, match=match):
        console_config(settings(tmp_path, **env))


def test_console_process_exits_2_with_a_clear_message(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "KEFU_VAR_DIR": str(tmp_path), "KEFU_POSTGRES_URL": "postgresql://db/x",
           "KEFU_HANDOFF_ADAPTER": "chatwoot"}
    proc = subprocess.run([sys.executable, "-m", "ops.console"], env=env, cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "KEFU_CHATWOOT_URL" in proc.stderr and "Traceback" not in proc.stderr
