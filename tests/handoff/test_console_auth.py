"""Console login, sessions, cookies, CSRF and roles against a real console process and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from handoff.console.users import hash_password, verify_password
from kefu.config import PROJECT_ROOT
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import PASSWORD, Client, kefu_env, login, start_console

console = console_fixtures.console
rasa_api = console_fixtures.rasa_api

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]


def test_scrypt_hash_verifies_and_is_salted():
    first, second = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("s3cret-pass", first) and not verify_password("s3cret-pasS", first)
    assert not verify_password("x", "garbage") and not verify_password("x", "scrypt$1$2$3$!!$!!")


def test_login_sets_a_hardened_session_cookie(console):
    client = Client(console.url)
    resp = client.login("alice")
    assert resp.status_code == 303 and resp.headers["location"] == "/console"
    cookie = resp.headers["set-cookie"]
    assert "kefu_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie, "plain http in tests: Secure only on https or KEFU_CONSOLE_SECURE_COOKIES"
    page = client.get("/console")
    assert page.status_code == 200 and "alice" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_secure_flag_when_the_proxy_says_https(console, tickets_url, rasa_api, tmp_path):
    env = kefu_env(tickets_url, tmp_path, KEFU_RASA_PORT=str(rasa_api.port), KEFU_RASA_TOKEN=rasa_api.token,
                   KEFU_CONSOLE_SECURE_COOKIES="true")
    other = start_console(env, tmp_path / "console.log")
    try:
        client = Client(other.url)
        page = client.http.get(other.url + "/login")
        assert "Secure" in page.headers["set-cookie"]
    finally:
        other.stop()


@pytest.mark.parametrize(
    "name,password", [("alice", "wrong password"), ("nobody", PASSWORD), ("", ""), ("alice", "x" * 5000),
                      ("' OR 1=1 --", PASSWORD), ("a" * 300, PASSWORD)]
)
def test_bad_logins_are_refused_without_a_session(console, name, password):
    client = Client(console.url)
    resp = client.login(name, password)
    assert resp.status_code == 401
    assert "kefu_session" not in client.http.cookies
    assert client.get("/api/queues").status_code == 401


def test_login_needs_the_csrf_token_and_same_origin(console):
    client = Client(console.url)
    client.http.get(console.url + "/login")
    resp = client.http.post(console.url + "/login", data={"name": "alice", "password": PASSWORD, "csrf": "forged"},
                            allow_redirects=False)
    assert resp.status_code == 403
    page = client.http.get(console.url + "/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    resp = client.http.post(console.url + "/login", data={"name": "alice", "password": PASSWORD, "csrf": token},
                            headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert resp.status_code == 403


def test_api_writes_need_csrf_header(console):
    client = login(console, "alice")
    assert client.post("/api/tickets/" + "0" * 32 + "/claim", csrf="").status_code == 403
    assert client.post("/api/tickets/" + "0" * 32 + "/claim", csrf="wrong").status_code == 403
    cross = client.post("/api/tickets/" + "0" * 32 + "/claim", headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert client.post("/api/tickets/" + "0" * 32 + "/claim").status_code == 404, "right token: reaches the store"


def test_logout_ends_the_session_server_side(console):
    client = login(console, "bob")
    stolen = client.http.cookies.get("kefu_session")
    forged = client.http.post(console.url + "/logout", data={"csrf": "forged"}, allow_redirects=False)
    assert forged.status_code == 403
    resp = client.http.post(console.url + "/logout", data={"csrf": client.csrf}, allow_redirects=False)
    assert resp.status_code == 303
    replay = requests.get(console.url + "/api/queues", cookies={"kefu_session": stolen})
    assert replay.status_code == 401, "the old cookie is dead after logout"


def test_roles_see_their_queues_only(console):
    alice, sara, vera = login(console, "alice"), login(console, "sara"), login(console, "vera")
    assert set(alice.get("/api/queues").json()["queues"]) >= {"cards", "payments"}
    assert "senior" not in alice.get("/api/queues").json()["queues"]
    assert "senior" in sara.get("/api/queues").json()["queues"]
    assert alice.get("/supervisor").status_code == 403
    assert alice.get("/api/metrics").status_code == 403
    assert vera.get("/supervisor").status_code == 200
    metrics = vera.get("/api/metrics").json()
    assert {"queues", "closed_today", "agents_online"} <= set(metrics)


def test_chinese_and_english_ui(console):
    client = login(console, "alice")
    assert "接入" in client.get("/console?lang=zh").text or "工作台" in client.get("/console?lang=zh").text
    english = client.get("/console?lang=en")
    assert "Agent console" in english.text and "kefu_lang=en" in english.headers.get("set-cookie", "")
    assert "Agent console" in client.get("/console").text, "the language choice sticks (cookie)"


def test_agents_cli_refuses_bad_input(console):
    for args, password in [
        (["--name", "x y", "--role", "agent"], PASSWORD),
        (["--name", "carl", "--role", "agent", "--groups", "Cards;DROP"], PASSWORD),
        (["--name", "carl", "--role", "agent"], "short"),
        (["--name", "alice", "--role", "agent"], PASSWORD),  # exists, no --replace
    ]:
        proc = subprocess.run([sys.executable, "-m", "ops", "agents", "add", *args, "--password-stdin"],
                              input=password + "\n", env=console.env, cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
    listed = subprocess.run([sys.executable, "-m", "ops", "agents", "list"], env=console.env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert "alice\tagent\tcards,payments" in listed.stdout
    assert "carl" not in listed.stdout


def test_sessions_survive_a_console_restart(console, tmp_path):
    client = login(console, "alice")
    other = start_console(console.env, tmp_path / "restart.log")
    try:
        again = requests.get(other.url + "/api/me", cookies={"kefu_session": client.http.cookies["kefu_session"]})
        assert again.status_code == 200 and again.json()["agent"]["name"] == "alice"
    finally:
        other.stop()
