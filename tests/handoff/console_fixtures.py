"""Fixtures for the console tests: a real console process, a local server for Rasa's HTTP API
subset the console calls, logged-in HTTP clients. Imported by the test modules that use them
(kept out of the shared `tests/handoff/conftest.py`)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import requests
from aiohttp import web

from kefu.config import PROJECT_ROOT
from tests.servers import free_port

PASSWORD = "correct horse battery"


@dataclass
class RasaApiServer:
    """A local HTTP server for the documented subset of Rasa's HTTP API the console uses:
    `POST /conversations/{id}/tracker/events` and `POST /conversations/{id}/execute` (token auth).
    It records each call; the end-to-end tests run against the real Rasa server instead."""

    token: str
    port: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            if request.query.get("token") != self.token:
                return web.json_response({"message": "unauthorized"}, status=401)
            if self.fail:
                return web.json_response({"message": "boom"}, status=500)
            body = await request.json()
            self.calls.append(
                {"path": request.path, "conversation": request.match_info["cid"], "query": dict(request.query),
                 "body": body}
            )
            if request.path.endswith("/execute"):  # as Rasa does when the channel has no output channel
                texts = [{"recipient_id": request.match_info["cid"], "text": f"please rate us ({body['name']})"}]
                return web.json_response({"tracker": {}, "messages": texts})
            return web.json_response({"sender_id": request.match_info["cid"], "events": []})

        app = web.Application()
        app.router.add_post("/conversations/{cid}/tracker/events", handle)
        app.router.add_post("/conversations/{cid}/execute", handle)
        return app

    def kinds(self, conversation_id: str) -> list[str]:
        """What the console did to a conversation, e.g. ["handoff:started", "bot", "resume", ...]."""
        out = []
        for event in self.events_for(conversation_id):
            custom = (event.get("data") or {}).get("custom") or {}
            out.append(f"handoff:{custom['handoff']}" if "handoff" in custom else event.get("event") or
                       f"execute:{event['execute']}")
        return out

    def bot_texts(self, conversation_id: str) -> list[str]:
        return [e["text"] for e in self.events_for(conversation_id) if e.get("event") == "bot" and e.get("text")]

    def events_for(self, conversation_id: str) -> list[dict[str, Any]]:
        out = []
        for call in self.calls:
            if call["conversation"] == conversation_id:
                body = call["body"]
                out.extend(body if isinstance(body, list) else [{"execute": body["name"], **call["query"]}])
        return out


@pytest.fixture(scope="module")
def rasa_api() -> Iterator[RasaApiServer]:
    server = RasaApiServer(token=uuid.uuid4().hex, port=free_port())
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.app())
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", server.port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    yield server
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def kefu_env(postgres_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"KEFU_POSTGRES_URL": postgres_url, "KEFU_VAR_DIR": str(var_dir), "KEFU_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def add_agent(env: dict[str, str], name: str, role: str, groups: str = "", password: str = PASSWORD) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ops", "agents", "add", "--name", name, "--role", role, "--groups", groups,
         "--password-stdin", "--replace"],
        input=password + "\n", env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


@dataclass
class ConsoleProcess:
    url: str
    proc: subprocess.Popen
    env: dict[str, str]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_console(env: dict[str, str], log: Path, port: Optional[int] = None) -> ConsoleProcess:
    port = port or free_port()
    env = {**env, "KEFU_CONSOLE_PORT": str(port)}
    out = open(log, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "ops.console"], env=env, cwd=PROJECT_ROOT, stdout=out,
                            stderr=subprocess.STDOUT)
    out.close()
    console = ConsoleProcess(f"http://127.0.0.1:{port}", proc, env, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"console exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if requests.get(console.url + "/healthz", timeout=1).status_code == 200:
                return console
        except requests.RequestException:
            pass
        time.sleep(0.3)
    console.stop()
    raise AssertionError(f"console did not start: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def console(tickets_url: str, rasa_api: RasaApiServer, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ConsoleProcess]:
    var = tmp_path_factory.mktemp("console_var")
    # its own (empty) model directory: the thresholds tests put a tiny model archive there
    env = kefu_env(tickets_url, var, KEFU_RASA_PORT=str(rasa_api.port), KEFU_RASA_TOKEN=rasa_api.token,
                   KEFU_MODEL_DIR=str(var / "models"))
    add_agent(env, "alice", "agent", "cards,payments")
    add_agent(env, "bob", "agent", "cards")
    add_agent(env, "sara", "senior", "")
    add_agent(env, "vera", "supervisor", "")
    proc = start_console(env, var / "console.log")
    yield proc
    proc.stop()


CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


class Client:
    """A logged-in browser-like HTTP client (cookies kept, CSRF header on writes)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.csrf = ""

    def login(self, name: str, password: str = PASSWORD, headers: Optional[dict[str, str]] = None
              ) -> requests.Response:
        page = self.http.get(self.base + "/login", headers=headers)
        token = CSRF_RE.search(page.text).group(1)
        resp = self.http.post(self.base + "/login", data={"name": name, "password": password, "csrf": token},
                              headers=headers, allow_redirects=False)
        if resp.status_code == 303:
            self.csrf = self.http.get(self.base + "/api/me").json()["csrf"]
        return resp

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.base + path, **kw)

    def post(self, path: str, body: Any = None, csrf: Optional[str] = None, **kw: Any) -> requests.Response:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf, **kw.pop("headers", {})}
        if body is not None:
            kw["data"] = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        return self.http.post(self.base + path, headers=headers, **kw)


def login(console: ConsoleProcess, name: str) -> Client:
    client = Client(console.url)
    assert client.login(name).status_code == 303
    return client
