"""`kefu run` as a user starts it: embedded PostgreSQL, actions and Rasa come up, the URL
is printed, and Ctrl-C (SIGINT) stops every process it started — no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from kefu.config import PROJECT_ROOT
from tests.servers import free_port, require_model

pytestmark = pytest.mark.servers


def postmaster_pid(pgdata) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def test_ctrl_c_stops_everything(tmp_path):
    require_model()
    rasa_port, actions_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "KEFU_POSTGRES_URL"}
    env.update(
        KEFU_RASA_PORT=str(rasa_port), KEFU_ACTIONS_PORT=str(actions_port), KEFU_VAR_DIR=str(tmp_path / "var"),
        KEFU_CONSOLE_PORT=str(free_port()), KEFU_GRAPH_PORT=str(free_port()), PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops", "run"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output: list[str] = []
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Kefu is ready" in line:
                break
        assert any("Kefu is ready" in line and f":{rasa_port}/chat/" in line for line in output), "".join(output)
        assert requests.get(f"http://127.0.0.1:{rasa_port}/chat/", timeout=10).status_code == 200

        started = psutil.Process(proc.pid).children(recursive=True)
        assert len(started) >= 2, "action server and Rasa server run as children"
        pg_pid = postmaster_pid(tmp_path / "var" / "pgdata")
        assert psutil.pid_exists(pg_pid)

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest
        assert "Kefu stopped." in rest
        gone, alive = psutil.wait_procs(started, timeout=10)
        assert alive == [], f"orphans left: {[p.pid for p in alive]}"
        assert not psutil.pid_exists(pg_pid) or psutil.Process(pg_pid).status() == psutil.STATUS_ZOMBIE
    finally:  # a failed assertion must not leave servers behind either
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for child in started:
            if child.is_running():
                child.kill()
