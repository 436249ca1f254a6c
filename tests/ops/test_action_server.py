"""The action server (ops/action_server.py) listens on loopback and runs actions only for callers
holding the shared secret; the launcher keeps the secrets (action-server secret, Rasa API token)
off every command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import psutil
import pytest
import requests

from kefu.config import ACTIONS_SECRET_HEADER, PROJECT_ROOT
from tests.servers import free_port

pytestmark = pytest.mark.servers

SECRET = uuid.uuid4().hex


def action_call(sender: str = "secret-test") -> dict:
    """What Rasa posts to /webhook to run `action_update_frustration` (no store needed)."""
    tracker = {
        "sender_id": sender, "slots": {"frustration": 0.0}, "events": [], "paused": False,
        "latest_message": {"text": "气死了", "sentiment": {"label": "negative", "score": -0.9}},
        "latest_event_time": None, "followup_action": None, "active_loop": {}, "latest_action_name": None,
    }
    return {"next_action": "action_update_frustration", "sender_id": sender, "tracker": tracker,
            "domain": {}, "version": "3.6.2"}


@pytest.fixture(scope="module")
def action_server(tmp_path_factory):
    """`python -m ops.action_server` as the launcher starts it: default host, secret in the environment."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KEFU_ACTIONS_HOST"}
    env.update(KEFU_ACTIONS_SECRET=SECRET, KEFU_VAR_DIR=str(tmp_path_factory.mktemp("var")))
    log = open(tmp_path_factory.mktemp("log") / "actions.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ops.quiet", "ops.action_server", "--actions", "actions",
                             "--port", str(port)], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.3)
    try:
        assert proc.poll() is None, f"action server exited with {proc.returncode}"
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(30)


def test_webhook_without_the_secret_is_refused(action_server):
    url, _ = action_server
    reply = requests.post(f"{url}/webhook", json=action_call(), timeout=10)
    assert reply.status_code == 401
    assert reply.json() == {"error": f"missing {ACTIONS_SECRET_HEADER} header"}


def test_webhook_with_a_wrong_secret_is_refused(action_server):
    url, _ = action_server
    reply = requests.post(f"{url}/webhook", json=action_call(), headers={ACTIONS_SECRET_HEADER: "guess"}, timeout=10)
    assert reply.status_code == 403
    assert reply.json() == {"error": f"wrong {ACTIONS_SECRET_HEADER} header"}
    listed = requests.get(f"{url}/actions", headers={ACTIONS_SECRET_HEADER: SECRET[:-1]}, timeout=10)
    assert listed.status_code == 403


def test_webhook_with_the_secret_runs_the_action(action_server):
    url, _ = action_server
    reply = requests.post(f"{url}/webhook", json=action_call(), headers={ACTIONS_SECRET_HEADER: SECRET}, timeout=30)
    assert reply.status_code == 200, reply.text
    events = reply.json()["events"]
    assert [e["name"] for e in events if e["event"] == "slot"] == ["frustration"]


def test_health_stays_open(action_server):
    url, _ = action_server
    assert requests.get(f"{url}/health", timeout=10).json() == {"status": "ok"}


def test_listens_on_loopback_only_and_keeps_the_secret_off_its_command_line(action_server):
    _, proc = action_server
    server = psutil.Process(proc.pid)
    listening = [c.laddr for c in server.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    assert not any(SECRET in part for part in server.cmdline())


def test_refuses_a_public_interface_without_a_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KEFU_ACTIONS_SECRET"}
    env["KEFU_VAR_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "ops.action_server", "--actions", "actions", "--host", "0.0.0.0",
                           "--port", str(free_port())], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "without KEFU_ACTIONS_SECRET" in done.stderr


def test_no_secret_on_the_stack_command_lines_and_the_api_still_needs_the_token(kefu_stack):
    """Rasa gets its API token and the action server its secret through the environment (ops/quiet.py)."""
    settings = kefu_stack
    secret = (settings.var_dir / "run" / "actions_secret").read_text().strip()
    children = psutil.Process().children(recursive=True)
    cmdlines = [" ".join(child.cmdline()) for child in children if child.is_running()]
    assert any("--enable-api" in line for line in cmdlines), cmdlines
    assert any("ops.action_server" in line for line in cmdlines), cmdlines
    for line in cmdlines:
        assert settings.rasa_token not in line and "--auth-token" not in line
        assert secret not in line
    status = f"http://127.0.0.1:{settings.rasa_port}/status"
    assert requests.get(status, timeout=10).status_code == 401
    assert requests.get(status, params={"token": "wrong"}, timeout=10).status_code == 401
    assert requests.get(status, params={"token": settings.rasa_token}, timeout=10).status_code == 200
