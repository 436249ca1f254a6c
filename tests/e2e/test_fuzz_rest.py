"""Property-based fuzzing of the running Rasa server's customer entry points (the session's real
stack): the REST webhook (arbitrary JSON shapes, unicode, control characters, large and nested values
within the request limit) and socket.io (events over the websocket, hostile polling handshakes).
Property: no 5xx, every 4xx carries a reason, the socket stays usable; the Rasa server's peak RSS and
the requests per endpoint go to bench/out/fuzz-summary.json ("rasa"); no configured secret in its logs."""

from __future__ import annotations

import json
import queue
import uuid
from typing import Any, Iterator
from urllib.parse import urlsplit

import psutil
import pytest
import requests
import socketio
from hypothesis import given
from hypothesis import strategies as st

from kefu.config import Settings
from tests import fuzz_support as fz

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]
SENDERS = st.one_of(st.from_regex(r"[A-Za-z0-9_.:@-]{1,40}", fullmatch=True), st.uuids().map(str), fz.HOSTILE_TEXT)
MESSAGES = st.fixed_dictionaries(  # mostly well-formed envelopes, so hostile texts reach NLU and dialogue
    {"sender": SENDERS, "message": fz.HOSTILE_TEXT},
    optional={"metadata": st.one_of(st.dictionaries(fz.HOSTILE_TEXT, fz.JSON_VALUES, max_size=4), fz.JSON_VALUES),
              "extra": fz.JSON_VALUES},
)


def rasa_pid(port: int) -> int:
    """The pid of this session's Rasa server (a child of the test process, started by the stack fixture)."""
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        if "rasa" in cmd and str(port) in cmd:
            return proc.pid
    raise AssertionError(f"no Rasa server process on port {port}")


@pytest.fixture(scope="module")
def rasa(kefu_stack: Settings) -> Iterator[tuple[Settings, fz.Tally]]:
    """The stack, with the Rasa server's RSS sampled over the module and its logs checked for secrets after."""
    tally = fz.Tally("rasa")
    with fz.PeakRss(rasa_pid(kefu_stack.rasa_port)) as rss:
        yield kefu_stack, tally
    tally.peak_rss_mb["rasa server"] = rss.peak_mb
    tally.write()
    secrets = [kefu_stack.rasa_token or ""]
    if kefu_stack.actions_secret_file.is_file():
        secrets.append(kefu_stack.actions_secret_file.read_text(encoding="utf-8").strip())
    secrets.append(urlsplit(kefu_stack.postgres_url or "").password or "")
    assert not fz.leaked_secrets(sorted((kefu_stack.var_dir / "log").glob("*.log")), secrets)


def record(tally: fz.Tally, endpoint: str, resp: requests.Response) -> None:
    problem = tally.check(endpoint, resp.status_code, resp.content, resp.headers.get("content-type", ""))
    assert problem is None, problem


def test_rest_webhook_never_answers_5xx(rasa) -> None:
    settings, tally = rasa
    url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook"
    bodies = st.one_of(MESSAGES.map(json.dumps), MESSAGES.map(json.dumps), fz.JSON_VALUES.map(json.dumps),
                       st.builds(lambda d: json.dumps({"sender": "s", "message": "hi", "metadata": json.loads(d)}),
                                 st.integers(1, 3000).map(fz.nested)),
                       st.binary(max_size=200).map(lambda b: b.decode("latin-1")))

    @fz.FUZZ
    @given(body=bodies, content_type=st.sampled_from(["application/json", "application/json",
                                                      "text/plain", "application/json; charset=gbk"]))
    def run(body: str, content_type: str) -> None:
        resp = requests.post(url, data=body.encode("utf-8", "surrogatepass"), timeout=120,
                             headers={"Content-Type": content_type})
        record(tally, "POST /webhooks/rest/webhook", resp)

    run()


class Socket:
    """A socket.io client over the websocket transport recording the server's error events."""

    def __init__(self, port: int) -> None:
        self.sio = socketio.Client(reconnection=False)
        self.errors: queue.Queue = queue.Queue()
        self.sio.on("kefu_error", self.errors.put)
        self.sio.connect(f"http://127.0.0.1:{port}", socketio_path="/socket.io", transports=["websocket"])


def test_socketio_events_never_break_the_server(rasa) -> None:
    settings, tally = rasa
    base = f"http://127.0.0.1:{settings.rasa_port}"
    client = Socket(settings.rasa_port)
    session = str(uuid.uuid4())
    payloads = st.one_of(
        fz.JSON_VALUES,
        st.fixed_dictionaries({"session_id": st.one_of(st.just(session), fz.JSON_VALUES), "message": fz.JSON_VALUES},
                              optional={"customData": fz.JSON_VALUES}),
    )
    events = st.sampled_from(["user_uttered", "user_uttered", "session_request", "kefu_unknown", "message"])

    @fz.FUZZ
    @given(event=events, payload=payloads)
    def run(event: str, payload: Any) -> None:
        client.sio.emit(event, payload)
        tally.tried[f"socket.io {event}"] += 1
        health = requests.get(f"{base}/webhooks/rest/", timeout=60)  # the server still answers
        record(tally, "GET /webhooks/rest/ (after a socket.io event)", health)
        assert client.sio.connected, f"the server dropped the socket after {event} {payload!r:.200}"

    try:
        run()
    finally:
        client.sio.disconnect()
    rejections = []
    while not client.errors.empty():
        rejections.append(client.errors.get())
    tally.tried["socket.io kefu_error received"] += len(rejections)
    assert all(isinstance(e, dict) and e.get("reason") for e in rejections), "a kefu_error without a reason"


def test_socketio_handshake_never_answers_5xx(rasa) -> None:
    settings, tally = rasa
    url = f"http://127.0.0.1:{settings.rasa_port}/socket.io/"
    params = st.dictionaries(st.sampled_from(["EIO", "transport", "sid", "t", "b64"]),
                             st.one_of(st.sampled_from(["4", "3", "polling", "websocket"]), fz.HOSTILE_TEXT),
                             max_size=4)

    @fz.FUZZ
    @given(query=params, origin=st.sampled_from([None, "null", "http://evil.example", "http://127.0.0.1"]),
           body=st.one_of(st.none(), st.binary(max_size=100)))
    def run(query: dict[str, str], origin: Any, body: Any) -> None:
        headers = {"Origin": origin} if origin else {}
        if body is None:
            resp = requests.get(url, params=query, headers=headers, timeout=60)
        else:
            resp = requests.post(url, params=query, data=body, headers=headers, timeout=60)
        record(tally, "socket.io polling", resp)

    run()
