"""`kefu run` keeps serving when one child crashes: a `kill -9` of the action server or of FalkorDB
is logged, the child is restarted with backoff, and Rasa keeps answering customers meanwhile.
Only Ctrl-C/SIGTERM stops everything (and then nothing is left behind, restarted children included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

import psutil
import pytest
import redis
import requests

from kefu.config import PROJECT_ROOT
from tests.servers import free_port, require_model

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]


class Launcher:
    """`python -m ops run` as a user starts it, its terminal output collected by a thread."""

    def __init__(self, var_dir) -> None:
        self.rasa_port, self.actions_port, self.graph_port = free_port(), free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("KEFU_POSTGRES_URL", "KEFU_GRAPH_URL")}
        env.update(
            KEFU_RASA_PORT=str(self.rasa_port), KEFU_ACTIONS_PORT=str(self.actions_port),
            KEFU_VAR_DIR=str(var_dir), KEFU_CONSOLE_PORT=str(free_port()), KEFU_GRAPH_PORT=str(self.graph_port),
            PYTHONUNBUFFERED="1",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ops", "run"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def child(self, needle: str) -> psutil.Process:
        """The launcher's child whose command line contains `needle`."""
        for proc in psutil.Process(self.proc.pid).children():
            if any(needle in part for part in proc.cmdline()):
                return proc
        raise AssertionError(f"no child running {needle!r}:\n{self.output}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.reader.join(10)


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def graph_answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def test_a_crashed_child_is_restarted_while_the_others_keep_serving(tmp_path):
    require_model()
    launcher = Launcher(tmp_path / "var")
    started: list[psutil.Process] = []
    try:
        assert wait_until(lambda: "Kefu is ready" in launcher.output or launcher.proc.poll() is not None, 400)
        assert "Kefu is ready" in launcher.output, launcher.output
        health = f"http://127.0.0.1:{launcher.actions_port}/health"
        rest = f"http://127.0.0.1:{launcher.rasa_port}/webhooks/rest/webhook"

        rasa = launcher.child("--enable-api")
        actions = launcher.child("--actions")
        actions.kill()
        actions.wait(10)
        assert wait_until(lambda: "actions exited with code -9" in launcher.output, 60), launcher.output
        # Rasa still answers customers while the action server is down (a degraded answer is fine)
        reply = requests.post(rest, json={"sender": "crash-test", "message": "你好"}, timeout=60)
        assert reply.status_code == 200, reply.text
        assert wait_until(lambda: answers(health), 180), launcher.output
        assert "restarted actions" in launcher.output, launcher.output
        assert launcher.proc.poll() is None, launcher.output
        assert launcher.child("--actions").pid != actions.pid
        assert launcher.child("--enable-api").pid == rasa.pid, "Rasa kept running"
        assert requests.post(rest, json={"sender": "crash-test", "message": "你好"}, timeout=60).status_code == 200

        falkordb = launcher.child("redis-server")
        falkordb.kill()
        falkordb.wait(10)
        assert wait_until(lambda: graph_answers(launcher.graph_port), 120), launcher.output
        assert "restarted falkordb" in launcher.output, launcher.output
        assert launcher.proc.poll() is None, launcher.output
        assert answers(health)

        started = psutil.Process(launcher.proc.pid).children(recursive=True)
        launcher.stop()
        assert launcher.proc.returncode == 0, launcher.output
        assert "Kefu stopped." in launcher.output
        _, alive = psutil.wait_procs(started, timeout=15)
        assert alive == [], f"orphans left: {[p.pid for p in alive]}"
    finally:  # a failed assertion must not leave servers behind either
        launcher.stop()
        for child in started:
            if child.is_running():
                child.kill()
