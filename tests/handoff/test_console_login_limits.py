"""Failed-login limits (per name and per client IP, in PostgreSQL), scrypt off the event loop at OWASP's
cost with transparent upgrades, and sessions ended when an account is replaced; real consoles and
PostgreSQL. Consoles here trust `X-Real-IP` (KEFU_SANIC_REAL_IP_HEADER, as behind a proxy) so each
test can be its own client; one test checks the default console ignores such headers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import psycopg
import pytest
import requests
import websocket

from analytics.live import ReportFigures
from handoff.console import users
from handoff.console.app import ConsoleConfig, create_app
from handoff.console.users import hash_password, verify_password
from handoff.tickets import TicketStore
from kefu.config import PROJECT_ROOT
from tests.custom_components.channels.live import LiveSanic
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import CSRF_RE, PASSWORD, Client, ConsoleProcess, add_agent, start_console

console = console_fixtures.console
rasa_api = console_fixtures.rasa_api

pytestmark = [pytest.mark.servers, pytest.mark.timeout(300)]

REAL_IP = "x-real-ip"


def ip() -> dict[str, str]:
    """A fresh client address, as a trusted proxy would pass it on."""
    return {REAL_IP: f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}


@pytest.fixture(scope="module")
def proxied(console: ConsoleProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """A console behind a (trusted) proxy on the same database, with a few more accounts."""
    for name in ("olga", "pavel", "rita", "tom"):
        add_agent(console.env, name, "agent", "cards")
    env = {**console.env, "KEFU_SANIC_REAL_IP_HEADER": REAL_IP}
    proc = start_console(env, tmp_path_factory.mktemp("proxied") / "console.log")
    yield proc
    proc.stop()


def attempt(url: str, name: str, password: str, headers: dict[str, str]) -> requests.Response:
    return Client(url).login(name, password, headers=headers)


def stored_hash(console: ConsoleProcess, name: str) -> str:
    with psycopg.connect(console.env["KEFU_POSTGRES_URL"], autocommit=True) as conn:
        return conn.execute("SELECT password_hash FROM console_agents WHERE name = %s", (name,)).fetchone()[0]


def test_default_cost_is_owasps_and_old_hashes_still_verify():
    from handoff.console.users import needs_rehash  # new with the upgrade: imported here so the module loads before

    assert hash_password("s3cret-pass").startswith("scrypt$131072$8$1$")
    old = hash_password("s3cret-pass", n=2**14)
    assert verify_password("s3cret-pass", old) and not verify_password("s3cret-pasS", old)
    assert needs_rehash(old) and not needs_rehash(hash_password("s3cret-pass"))


def test_wrong_passwords_past_the_limit_lock_that_name(proxied):
    client = ip()
    for _ in range(5):
        assert attempt(proxied.url, "olga", "wrong password", client).status_code == 401
    locked = attempt(proxied.url, "olga", PASSWORD, client)
    assert locked.status_code == 429, "the right password too, once the name is locked"
    assert "too many failed logins" in locked.json()["detail"]
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    assert attempt(proxied.url, "olga", PASSWORD, ip()).status_code == 429, "from another address too"
    assert attempt(proxied.url, "pavel", PASSWORD, client).status_code == 303, "other names are unaffected"


def test_one_address_is_limited_across_names(proxied):
    client = ip()
    for n in range(20):
        assert attempt(proxied.url, f"nobody{n}", "wrong password", client).status_code == 401
    locked = attempt(proxied.url, "pavel", PASSWORD, client)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert attempt(proxied.url, "pavel", PASSWORD, ip()).status_code == 303, "other addresses are unaffected"


def test_a_successful_login_clears_the_names_count(proxied):
    client = ip()
    for _ in range(4):
        assert attempt(proxied.url, "tom", "wrong password", client).status_code == 401
    assert attempt(proxied.url, "tom", PASSWORD, client).status_code == 303
    for _ in range(4):
        assert attempt(proxied.url, "tom", "wrong password", client).status_code == 401
    assert attempt(proxied.url, "tom", PASSWORD, client).status_code == 303


def test_the_limit_survives_a_console_restart(proxied, tmp_path):
    for _ in range(5):
        assert attempt(proxied.url, "rita", "wrong password", ip()).status_code == 401
    other = start_console(proxied.env, tmp_path / "restart.log")
    try:
        assert attempt(other.url, "rita", PASSWORD, ip()).status_code == 429
    finally:
        other.stop()


def test_tracking_many_names_clears_no_one(proxied):
    """The old in-memory limiter forgot everyone once 10,000 names were tracked."""
    for _ in range(10):  # locked after 5 now, after 10 before
        assert attempt(proxied.url, "sara", "wrong password", ip()).status_code in (401, 429)
    assert attempt(proxied.url, "sara", PASSWORD, ip()).status_code == 429

    def fill(chunk: range) -> set[int]:
        http = requests.Session()
        token = CSRF_RE.search(http.get(proxied.url + "/login").text).group(1)
        seen = set()
        for n in chunk:  # an empty password: no hash to wait for, but each name is tracked
            resp = http.post(proxied.url + "/login", data={"name": f"filler{n}", "password": "", "csrf": token},
                             headers={REAL_IP: f"10.200.{n // 250}.{n % 250}"}, allow_redirects=False)
            seen.add(resp.status_code)
            token = CSRF_RE.search(resp.text).group(1) if resp.status_code == 401 else token  # a new form each time
        return seen

    with ThreadPoolExecutor(4) as pool:
        statuses = set().union(*pool.map(fill, [range(k, 10_050, 4) for k in range(4)]))
    assert statuses == {401}
    assert attempt(proxied.url, "sara", PASSWORD, ip()).status_code == 429, "still locked"


def test_replacing_an_account_ends_its_sessions(proxied):
    client = Client(proxied.url)
    assert client.login("bob", headers=ip()).status_code == 303
    assert client.get("/api/me").status_code == 200
    add_agent(proxied.env, "bob", "agent", "cards", password="a brand new password")
    assert client.get("/api/me").status_code == 401, "the old password's sessions end with --replace"


def test_old_parameter_hashes_are_upgraded_at_login(proxied):
    with psycopg.connect(proxied.env["KEFU_POSTGRES_URL"], autocommit=True) as conn:
        conn.execute("UPDATE console_agents SET password_hash = %s WHERE name = 'vera'",
                     (hash_password(PASSWORD, n=2**14),))
    assert stored_hash(proxied, "vera").startswith("scrypt$16384$8$1$")
    assert attempt(proxied.url, "vera", PASSWORD, ip()).status_code == 303
    upgraded = stored_hash(proxied, "vera")
    assert upgraded.startswith("scrypt$131072$8$1$") and verify_password(PASSWORD, upgraded)
    assert attempt(proxied.url, "vera", PASSWORD, ip()).status_code == 303


class HeldHash:
    """Wraps hashlib.scrypt: the first call after `arm()` signals `entered` and waits for `release`."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def arm(self) -> None:
        self.armed = True

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        if self.armed:
            self.armed = False
            self.entered.set()
            self.release.wait(120)
        return self.real(*args, **kwargs)


@pytest.fixture
def in_process(console, rasa_api) -> Iterator[LiveSanic]:
    """The console app in this process (so a test can hold a hash), in its own thread and event loop."""
    from sanic import Sanic

    Sanic.test_mode = True
    config = ConsoleConfig(postgres_url=console.env["KEFU_POSTGRES_URL"], rasa_url=rasa_api.url,
                           rasa_token=rasa_api.token)
    app = create_app(config, f"kefu_console_{uuid.uuid4().hex[:8]}", live_metrics=ReportFigures())
    app.config.REAL_IP_HEADER = REAL_IP
    server = LiveSanic(app).start()
    yield server
    server.stop()


def test_a_login_hashing_does_not_block_other_requests(in_process, monkeypatch):
    held = HeldHash(hashlib.scrypt)
    monkeypatch.setattr(users.hashlib, "scrypt", held)
    client, address = Client(in_process.url), ip()
    page = client.http.get(in_process.url + "/login", headers=address)
    token = CSRF_RE.search(page.text).group(1)
    result: dict[str, Any] = {}

    def log_in() -> None:
        result["resp"] = client.http.post(in_process.url + "/login", headers=address, allow_redirects=False,
                                          data={"name": "alice", "password": PASSWORD,
                                                "csrf": token})

    held.arm()
    thread = threading.Thread(target=log_in)
    thread.start()
    try:
        assert held.entered.wait(60), "the login never reached the hash"
        try:
            health = requests.get(in_process.url + "/healthz", timeout=15)
        except requests.Timeout:
            pytest.fail("the console answered nothing while a login was hashing")
        assert health.status_code == 200
        assert "resp" not in result, "the hash is still held: the login has not finished"
    finally:
        held.release.set()
        thread.join(60)
    assert result["resp"].status_code == 303


def open_socket(proxied: ConsoleProcess, client: Client, ticket_id: str) -> websocket.WebSocket:
    ws_url = proxied.url.replace("http://", "ws://") + f"/ws/tickets/{ticket_id}"
    cookie = "kefu_session=" + client.http.cookies["kefu_session"]
    sock = websocket.create_connection(ws_url, cookie=cookie, origin=proxied.url, timeout=15)  # < ping interval
    while json.loads(sock.recv())["type"] != "ticket":  # the ticket's messages, then the ticket
        pass
    return sock


def ended(sock: websocket.WebSocket) -> list[Any]:
    """What the socket receives until the console closes it (a timeout fails the test: it stayed open)."""
    seen: list[Any] = []
    try:
        while True:
            seen.append(json.loads(sock.recv() or "null"))
            if seen[-1] is None:
                return seen
    except websocket.WebSocketConnectionClosedException:
        return seen
    finally:
        sock.close()


async def new_ticket(store: TicketStore) -> str:
    return (await store.create(conversation_id=f"c-{uuid.uuid4().hex}", channel="rest", queue="cards",
                               reason="specialist", priority=10, language="zh")).id


async def test_logging_out_closes_the_agents_sockets(proxied, store):
    alice = Client(proxied.url)
    assert alice.login("alice", headers=ip()).status_code == 303
    sock = open_socket(proxied, alice, await new_ticket(store))
    assert alice.http.post(proxied.url + "/logout", data={"csrf": alice.csrf}, allow_redirects=False).status_code == 303
    assert {"type": "error", "detail": "logged out"} in ended(sock)


async def test_disabling_an_account_closes_its_sockets(proxied, store):
    add_agent(proxied.env, "uma", "agent", "cards")
    uma = Client(proxied.url)
    assert uma.login("uma", headers=ip()).status_code == 303
    sock = open_socket(proxied, uma, await new_ticket(store))
    proc = subprocess.run([sys.executable, "-m", "ops", "agents", "disable", "--name", "uma"], env=proxied.env,
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert {"type": "error", "detail": "logged out"} in ended(sock)
