"""Property-based fuzzing of the console's HTTP entry points on a real console process: the JSON API
(requests drawn from docs/console-openapi.yaml, logged in with session cookie + CSRF header so the
handlers' logic is reached), the login form, the REST customers' poll and the Chatwoot/Slack adapter
webhooks. Property: no 5xx, every 4xx carries a message; the console's peak RSS and the requests
tried per endpoint go to bench/out/fuzz-summary.json; no configured secret appears in its log."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.tickets import TicketStore
from tests import fuzz_support as fz
from tests.handoff import console_fixtures
from tests.handoff.console_fixtures import PASSWORD, ConsoleProcess, login

rasa_api = console_fixtures.rasa_api
pytestmark = [pytest.mark.servers, pytest.mark.timeout(300)]
SPEC = fz.openapi()
OPERATIONS = fz.operations(SPEC)
CHATWOOT_TOKEN = "cw-hook-" + uuid.uuid4().hex
CHATWOOT_API_TOKEN = "cw-api-" + uuid.uuid4().hex
SLACK_SECRET = "slack-signing-" + uuid.uuid4().hex
SLACK_BOT_TOKEN = "xoxb-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def tally() -> Iterator[fz.Tally]:
    result = fz.Tally("console")
    yield result
    result.write()


@pytest.fixture(scope="module")
def console(tickets_url: str, rasa_api, tmp_path_factory: pytest.TempPathFactory,
            tally: fz.Tally) -> Iterator[ConsoleProcess]:
    """The console with the Chatwoot adapter configured (its webhook is fuzzed too); RSS sampled throughout."""
    var = tmp_path_factory.mktemp("fuzz_console")
    env = console_fixtures.kefu_env(
        tickets_url, var, KEFU_RASA_PORT=str(rasa_api.port), KEFU_RASA_TOKEN=rasa_api.token,
        KEFU_MODEL_DIR=str(var / "models"), KEFU_HANDOFF_ADAPTER="chatwoot",
        KEFU_CHATWOOT_URL="http://127.0.0.1:9", KEFU_CHATWOOT_TOKEN=CHATWOOT_API_TOKEN,
        KEFU_CHATWOOT_ACCOUNT_ID="1", KEFU_CHATWOOT_INBOX_ID="1", KEFU_CHATWOOT_WEBHOOK_TOKEN=CHATWOOT_TOKEN,
    )
    for name, role, groups in (("alice", "agent", "cards,payments"), ("vera", "supervisor", "")):
        console_fixtures.add_agent(env, name, role, groups)
    proc = console_fixtures.start_console(env, var / "console.log")
    with fz.PeakRss(proc.proc.pid) as rss:
        yield proc
    tally.peak_rss_mb["console"] = rss.peak_mb
    proc.stop()
    secrets = [CHATWOOT_TOKEN, CHATWOOT_API_TOKEN, rasa_api.token, PASSWORD, urlsplit(tickets_url).password or ""]
    assert not fz.leaked_secrets([proc.log], secrets)


def record(tally: fz.Tally, endpoint: str, resp: requests.Response) -> None:
    problem = tally.check(endpoint, resp.status_code, resp.content, resp.headers.get("content-type", ""))
    assert problem is None, problem


async def some_tickets(store: TicketStore) -> list[str]:
    ids = []
    for queue in ("cards", "cards", "payments", "senior"):
        ticket = await store.create(conversation_id=f"fz-{uuid.uuid4().hex[:8]}", channel="rest", queue=queue,
                                    reason="specialist", priority=10, language="zh")
        ids.append(ticket.id)
    return ids


async def test_json_api_never_answers_5xx(console, store, tally):
    ids = await some_tickets(store)
    clients = {"alice": login(console, "alice"), "vera": login(console, "vera")}
    anonymous = console_fixtures.Client(console.url)
    ticket_ids = st.one_of(st.sampled_from(ids), st.sampled_from(ids), fz.HOSTILE_TEXT.filter(bool),
                           st.just(str(uuid.uuid4())))

    mostly = st.sampled_from([True, True, True, True, False])  # most requests get past CSRF and Content-Type

    @settings(fz.FUZZ, max_examples=120)
    @given(op=st.sampled_from(OPERATIONS), who=st.sampled_from(["alice", "vera", "vera", "nobody"]),
           ticket_id=ticket_ids, data=st.data(), csrf_ok=mostly, json_type=mostly)
    def run(op: tuple[str, str, Any], who: str, ticket_id: str, data: st.DataObject, csrf_ok: bool,
            json_type: bool) -> None:
        method, template, schema = op
        client = clients.get(who, anonymous)
        path = template.replace("{ticket_id}", quote(ticket_id, safe=""))
        if method == "get":
            params = {"window": data.draw(fz.HOSTILE_TEXT)} if template.endswith("/live") else None
            resp = client.get(path, params=params)
        else:
            body = data.draw(fz.body_strategy(schema, SPEC)) if schema else data.draw(st.none() | fz.JSON_VALUES)
            headers = {} if json_type else {"Content-Type": "text/plain"}
            resp = client.post(path, body, csrf=None if csrf_ok else "forged", headers=headers)
        record(tally, f"{method.upper()} {template}", resp)

    run()


async def test_malformed_bodies_are_4xx(console, store, tally):
    ids = await some_tickets(store)
    vera = login(console, "vera")
    raw = st.one_of(st.binary(max_size=200), st.just(fz.nested(5000).encode()), st.just(b'{"queue": "cards"'),
                    st.just(b"\xff\xfe{}"), st.just(json.dumps({"text": "x" * 9000}).encode()))

    @fz.FUZZ
    @given(op=st.sampled_from([o for o in OPERATIONS if o[0] == "post"]), body=raw)
    def run(op: tuple[str, str, Any], body: bytes) -> None:
        path = op[1].replace("{ticket_id}", ids[0])
        resp = vera.http.post(console.url + path, data=body,
                              headers={"X-CSRF-Token": vera.csrf, "Content-Type": "application/json"})
        record(tally, f"POST {op[1]} (raw)", resp)

    run()


def test_customer_poll_never_answers_5xx(console, tally):
    @fz.FUZZ
    @given(conversation=st.one_of(fz.HOSTILE_TEXT, st.just("x" * 300)),
           after=st.one_of(st.none(), fz.HOSTILE_TEXT, st.integers().map(str)))
    def run(conversation: str, after: Any) -> None:
        params = {"conversation_id": conversation} if conversation else {}
        if after is not None:
            params["after"] = after
        record(tally, "GET /handoff/messages", requests.get(console.url + "/handoff/messages", params=params))

    run()


def chatwoot_event(ticket_hint: Any, content: Any) -> dict[str, Any]:
    return {"event": "message_created", "message_type": "outgoing", "private": False, "content": content,
            "conversation": {"id": ticket_hint, "custom_attributes": {"kefu_ticket": ticket_hint}},
            "sender": {"name": content, "type": "user"}}


def test_chatwoot_webhook_never_answers_5xx(console, tally):
    bodies = st.one_of(st.builds(chatwoot_event, fz.JSON_VALUES, fz.JSON_VALUES), fz.JSON_VALUES)

    @fz.FUZZ
    @given(body=bodies, token=st.sampled_from([CHATWOOT_TOKEN, CHATWOOT_TOKEN, "", "wrong"]),
           adapter=st.sampled_from(["chatwoot", "chatwoot", "slack", "console", "%00"]))
    def run(body: Any, token: str, adapter: str) -> None:
        resp = requests.post(f"{console.url}/handoff/webhooks/{adapter}", params={"token": token},
                             data=json.dumps(body), headers={"Content-Type": "application/json"})
        record(tally, "POST /handoff/webhooks/chatwoot", resp)

    run()


def slack_signed(body: bytes, secret: str, timestamp: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/json"}


def test_slack_webhook_never_answers_5xx(tickets_url, rasa_api, slack, tmp_path, tally):
    env = console_fixtures.kefu_env(
        tickets_url, tmp_path, KEFU_RASA_PORT=str(rasa_api.port), KEFU_RASA_TOKEN=rasa_api.token,
        KEFU_HANDOFF_ADAPTER="slack", KEFU_SLACK_API_URL=slack.url, KEFU_SLACK_BOT_TOKEN=SLACK_BOT_TOKEN,
        KEFU_SLACK_SIGNING_SECRET=SLACK_SECRET, KEFU_SLACK_CHANNEL=slack.channel,
    )
    slack_console = console_fixtures.start_console(env, tmp_path / "console.log")
    events = st.fixed_dictionaries({"type": st.sampled_from(["event_callback", "url_verification"]) | fz.HOSTILE_TEXT,
                                    "challenge": fz.JSON_VALUES,
                                    "event": st.fixed_dictionaries({"type": st.just("message"), "text": fz.JSON_VALUES,
                                                                    "thread_ts": fz.JSON_VALUES,
                                                                    "user": fz.JSON_VALUES})})
    try:
        with fz.PeakRss(slack_console.proc.pid) as rss:
            @fz.FUZZ
            @given(body=st.one_of(events.map(json.dumps), fz.JSON_VALUES.map(json.dumps), st.text(max_size=80)),
                   sign_as=st.sampled_from([SLACK_SECRET, SLACK_SECRET, "wrong", None]),
                   stamp=st.sampled_from(["now", "0", "-1", "abc", "9" * 30, ""]))
            def run(body: str, sign_as: Any, stamp: str) -> None:
                raw = body.encode("utf-8", "surrogatepass")
                timestamp = str(int(time.time())) if stamp == "now" else stamp
                headers = slack_signed(raw, sign_as, timestamp) if sign_as else {"Content-Type": "application/json"}
                resp = requests.post(f"{slack_console.url}/handoff/webhooks/slack", data=raw, headers=headers)
                record(tally, "POST /handoff/webhooks/slack", resp)

            run()
        tally.peak_rss_mb["console (slack adapter)"] = rss.peak_mb
    finally:
        slack_console.stop()
    assert not fz.leaked_secrets([Path(slack_console.log)], [SLACK_SECRET, SLACK_BOT_TOKEN, rasa_api.token])


def test_login_form_never_answers_5xx(console, tally):
    """Last: failed logins count against this client's IP."""
    field = st.one_of(fz.HOSTILE_TEXT, st.just("alice"))

    @fz.FUZZ
    @given(name=field, password=fz.HOSTILE_TEXT, csrf_ok=st.booleans())
    def run(name: str, password: str, csrf_ok: bool) -> None:
        client = console_fixtures.Client(console.url)
        page = client.http.get(console.url + "/login")
        token = console_fixtures.CSRF_RE.search(page.text).group(1)
        resp = client.http.post(console.url + "/login", allow_redirects=False,
                                data={"name": name, "password": password, "csrf": token if csrf_ok else "x"})
        record(tally, "POST /login", resp)

    run()
