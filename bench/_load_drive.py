"""Simulated customers for bench/load.py: one REST or socket.io session per customer, and the
closed-loop, open-loop (Poisson) and long-session drivers. Traffic goes to 127.0.0.1 only.

When a turn is over:
- REST: `POST /webhooks/rest/webhook` returns after the whole turn (every bot message of it).
- socket.io: the client emits `user_uttered` with an ack callback. python-socketio sends the ack
  when the server's handler returns, i.e. after Rasa has processed the whole turn (Rasa's and
  Kefu's handlers both await the message processing), and after every `bot_uttered` of the turn
  (same connection, in order). `done_ms` is the time to the ack, `first_ms` the time to the first
  `bot_uttered` (what a customer sees first; none when the bot is paused after a handoff).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import random
import time
import uuid
from typing import Any, Callable, Deque, List, Optional, Tuple

import aiohttp
import socketio
from _load_plan import Script, Turn, long_session_turns, poisson_offsets, script_for

if not hasattr(aiohttp, "ClientWSTimeout"):
    # python-engineio 4.15's websocket client builds aiohttp.ClientWSTimeout(ws_close=...) (aiohttp >= 3.10);
    # Rasa 3.6 pins aiohttp 3.9, whose ws_connect takes the close timeout as a plain float `timeout`.
    aiohttp.ClientWSTimeout = lambda ws_close=10.0, **_: ws_close  # type: ignore[attr-defined]

MAX_LIVE = 500  # open loop: at most this many conversations at once; an arrival beyond is a "backlog" error
CONNECT_RETRY_PAUSE = 0.2


def new_sender() -> str:
    return f"load{uuid.uuid4().hex[:20]}"  # fits Kefu's socket.io session id pattern [A-Za-z0-9_-]{1,64}


class RestSession:
    """One customer over REST: a fresh sender id, one POST per turn."""

    broken = False

    def __init__(self, http: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self.http = http
        self.url = f"{base_url}/webhooks/rest/webhook"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.sender = new_sender()

    async def open(self) -> Optional[str]:
        return None

    async def turn(self, text: str) -> Turn:
        turn = Turn(sent=time.monotonic())
        t0 = time.perf_counter()
        try:
            async with self.http.post(
                self.url, json={"sender": self.sender, "message": text}, timeout=self.timeout
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    turn.error = f"http {resp.status}"
                else:
                    turn.done_ms = (time.perf_counter() - t0) * 1000
                    turn.bot_messages = len(json.loads(body) or [])
        except asyncio.TimeoutError:
            turn.error = "timeout"
        except (aiohttp.ClientError, ValueError, TypeError) as exc:  # ValueError: a body that is not JSON
            turn.error = f"client: {type(exc).__name__}"
        return turn

    async def close(self) -> None:
        return None


class SocketSession:
    """One customer over socket.io: connect, `session_request` with a fresh session id, then
    `user_uttered` {message, session_id} per turn (see the module docstring for the timing)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.session_id = new_sender()
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, request_timeout=timeout)
        self.confirmed = asyncio.Event()
        self.current: Optional[Tuple[Turn, float]] = None
        self.broken = False
        self.sio.on("session_confirm", self._on_confirm)
        self.sio.on("bot_uttered", self._on_bot)
        self.sio.on("kefu_error", self._on_error)

    async def _on_confirm(self, *_args: Any) -> None:
        self.confirmed.set()

    async def _on_bot(self, *_args: Any) -> None:
        if self.current is not None:
            turn, t0 = self.current
            if turn.first_ms is None:
                turn.first_ms = (time.perf_counter() - t0) * 1000
            turn.bot_messages += 1

    async def _on_error(self, data: Any = None, *_args: Any) -> None:
        if self.current is not None:
            reason = data.get("reason") if isinstance(data, dict) else data
            self.current[0].error = f"kefu_error: {reason}"

    async def open(self) -> Optional[str]:
        try:
            await asyncio.wait_for(
                self.sio.connect(self.base_url, transports=["websocket"], wait_timeout=self.timeout),
                self.timeout,
            )
            await self.sio.emit("session_request", {"session_id": self.session_id})
            await asyncio.wait_for(self.confirmed.wait(), self.timeout)
        except (asyncio.TimeoutError, socketio.exceptions.SocketIOError, OSError) as exc:
            self.broken = True
            return type(exc).__name__
        return None

    async def turn(self, text: str) -> Turn:
        turn = Turn(sent=time.monotonic())
        t0 = time.perf_counter()
        self.current = (turn, t0)
        acked = asyncio.get_running_loop().create_future()

        def on_ack(*_args: Any) -> None:
            if not acked.done():
                acked.set_result(time.perf_counter())

        try:
            await self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id}, callback=on_ack)
            done_at = await asyncio.wait_for(acked, self.timeout)
            if turn.error is None:
                turn.done_ms = (done_at - t0) * 1000
        except asyncio.TimeoutError:
            turn.error = "timeout"
            self.broken = True  # a late reply must not be taken for the next turn's
        except socketio.exceptions.SocketIOError as exc:
            turn.error = f"client: {type(exc).__name__}"
            self.broken = True
        finally:
            self.current = None
        return turn

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.sio.disconnect(), 5)
        except (asyncio.TimeoutError, socketio.exceptions.SocketIOError, OSError):
            pass


Session = Any  # RestSession | SocketSession
SessionFactory = Callable[[], Session]


def session_factory(channel: str, base_url: str, timeout: float, http: aiohttp.ClientSession) -> SessionFactory:
    if channel == "rest":
        return lambda: RestSession(http, base_url, timeout)
    if channel == "socketio":
        return lambda: SocketSession(base_url, timeout)
    raise ValueError(f"unknown channel {channel!r}")


async def converse(new_session: SessionFactory, script: Script, turns: List[Turn], deadline: float) -> None:
    """One customer from first to last turn (stops at the deadline or when the session breaks)."""
    session = new_session()
    error = await session.open()
    if error is not None:
        turns.append(Turn(sent=time.monotonic(), error=f"connect: {error}"))
        await session.close()
        await asyncio.sleep(CONNECT_RETRY_PAUSE)
        return
    try:
        for text in script.turns:
            if time.monotonic() >= deadline:
                break
            turns.append(await session.turn(text))
            if session.broken:
                break
    finally:
        await session.close()


async def closed_loop(new_session: SessionFactory, customers: int, duration: float) -> Tuple[float, List[Turn]]:
    """`customers` at once, no think time; a finished customer is replaced by a new one."""
    turns: List[Turn] = []
    counter = itertools.count()
    started = time.monotonic()
    deadline = started + duration

    async def customer_slot() -> None:
        while time.monotonic() < deadline:
            await converse(new_session, script_for(next(counter)), turns, deadline)

    await asyncio.gather(*(customer_slot() for _ in range(customers)))
    return started, turns


class _Conversation:
    def __init__(self, session: Session, script: Script) -> None:
        self.session = session
        self.script = script
        self.next = 0
        self.opened = False


async def open_loop(
    new_session: SessionFactory, rate: float, duration: float, timeout: float, rng: random.Random
) -> Tuple[float, List[Turn]]:
    """Poisson arrivals at `rate` msg/s. Each arrival is the next turn of the conversation that has
    waited longest since its last reply; if every live conversation is waiting for a reply (or there
    is none) it starts a new customer. A conversation never has two turns in flight."""
    turns: List[Turn] = []
    idle: Deque[_Conversation] = collections.deque()
    live: List[_Conversation] = []
    tasks: set = set()
    counter = itertools.count()

    async def run_turn(conv: _Conversation) -> None:
        if not conv.opened:
            conv.opened = True
            error = await conv.session.open()
            if error is not None:
                turns.append(Turn(sent=time.monotonic(), error=f"connect: {error}"))
                await finish(conv)
                return
        turns.append(await conv.session.turn(conv.script.turns[conv.next]))
        conv.next += 1
        if conv.session.broken or conv.next >= len(conv.script.turns):
            await finish(conv)
        else:
            idle.append(conv)

    async def finish(conv: _Conversation) -> None:
        if conv in live:
            live.remove(conv)
        await conv.session.close()

    offsets = poisson_offsets(rate, duration, rng)
    started = time.monotonic()
    for offset in offsets:
        delay = started + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle:
            conv = idle.popleft()
        elif len(live) >= MAX_LIVE:
            turns.append(Turn(sent=time.monotonic(), error="backlog"))
            continue
        else:
            conv = _Conversation(new_session(), script_for(next(counter)))
            live.append(conv)
        task = asyncio.create_task(run_turn(conv))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=2 * timeout + 10)
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*(conv.session.close() for conv in list(live)), return_exceptions=True)
    return started, turns


async def long_session(new_session: SessionFactory, n: int) -> Tuple[float, List[Turn]]:
    """One customer, `n` turns in a row (bot-path messages), no think time."""
    turns: List[Turn] = []
    session = new_session()
    started = time.monotonic()
    error = await session.open()
    if error is not None:
        return started, [Turn(sent=started, error=f"connect: {error}")]
    try:
        for text in long_session_turns(n):
            turns.append(await session.turn(text))
            if session.broken:
                break
    finally:
        await session.close()
    return started, turns


async def warm_up(new_session: SessionFactory, conversations: int) -> List[Turn]:
    """Every script once, one after the other (not counted): loads lazy code paths and caches."""
    turns: List[Turn] = []
    deadline = time.monotonic() + 600
    for index in range(conversations):
        await converse(new_session, script_for(index), turns, deadline)
    return turns
