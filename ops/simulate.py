"""`kefu simulate --customers N --seed S`: reproducible zh/en traffic through the REST channel.

Each simulated customer follows one scripted journey (balance, lost card, fees, order status,
returns, small talk, misunderstandings, asking for a person, anger) drawn from a seeded RNG, so
the same seed sends the same messages in the same order. The customer side goes through the
running assistant (`POST /webhooks/rest/webhook`), so Rasa's tracker store records everything the
report reads. With a database URL the simulator also plays the agents: it claims and closes the
conversation's handoff ticket (if the routing created one) through `handoff.tickets.TicketStore`
and leaves the customer's 1–5 rating.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Optional

from analytics.database import tracker_database
from handoff.tickets import TicketStore
from kefu.config import Settings
from kefu.errors import BadInput, StoreUnavailable

JOURNEYS: dict[str, list[list[str]]] = {
    "balance_zh": [["你好", "我想查一下余额", "谢谢"], ["查余额", "谢谢，再见"]],
    "balance_en": [["hi", "what is my account balance", "thanks"], ["check my balance please", "bye"]],
    "lost_card_zh": [["我的卡丢了", "尾号4821", "谢谢"], ["银行卡被偷了怎么办", "是信用卡", "好的"]],
    "lost_card_en": [["i lost my card", "it ends in 7731", "thanks"]],
    "fees_zh": [["信用卡年费多少", "白金卡呢", "谢谢"], ["跨行转账收手续费吗", "好的"]],
    "fees_en": [["what is the annual fee for a credit card", "ok thanks"]],
    "order_zh": [["我的订单到哪了", "订单号20240815001", "谢谢"], ["快递怎么还没到", "好吧"]],
    "order_en": [["where is my order", "order 20240815001", "thanks"]],
    "return_zh": [["我要退货", "订单号20240815001", "尺码不合适", "谢谢"]],
    "misunderstood_zh": [["嗯那个啥", "就是那个东西", "转人工"]],
    "misunderstood_en": [["blorp zzz", "asdf qwer", "talk to a human"]],
    "human_zh": [["转人工", "好的我等一下"], ["我要投诉，你们服务太差了"]],
    "human_en": [["i want to speak to a real person"], ["this is ridiculous, you are useless"]],
}
WEIGHTS = {"balance_zh": 10, "balance_en": 6, "lost_card_zh": 6, "lost_card_en": 3, "fees_zh": 8, "fees_en": 4,
           "order_zh": 10, "order_en": 5, "return_zh": 5, "misunderstood_zh": 4, "misunderstood_en": 2,
           "human_zh": 5, "human_en": 3}
MAX_CUSTOMERS = 10_000


@dataclass
class Customer:
    sender: str
    journey: str
    messages: list[str]
    rating: int
    pause_s: float


@dataclass
class SimulationResult:
    customers: int = 0
    messages: int = 0
    replies: int = 0
    errors: list[str] = field(default_factory=list)
    tickets_closed: int = 0
    ratings: int = 0
    seconds: float = 0.0


def plan(customers: int, seed: int) -> list[Customer]:
    """The deterministic traffic plan of `customers` customers for `seed`."""
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise BadInput(f"--customers must be between 1 and {MAX_CUSTOMERS}, got {customers}")
    rng = random.Random(seed)
    names = sorted(JOURNEYS)
    out = []
    for i in range(customers):
        journey = rng.choices(names, [WEIGHTS[n] for n in names])[0]
        messages = rng.choice(JOURNEYS[journey])
        rating = rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 4, 5])[0]
        out.append(Customer(f"sim-{seed}-{i:05d}", journey, list(messages), rating, round(rng.uniform(0, 0.2), 3)))
    return out


def send(base_url: str, sender: str, text: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    body = json.dumps({"sender": sender, "message": text}).encode()
    req = urllib.request.Request(f"{base_url.rstrip('/')}/webhooks/rest/webhook", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8") or "[]")
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as exc:
        raise StoreUnavailable(f"the assistant at {base_url} did not answer: {exc}") from exc


async def _play_agent(url: str, customers: list[Customer], result: SimulationResult) -> None:
    """Close each simulated conversation's open ticket as an agent and store the customer's rating."""
    store = TicketStore(url)
    await store.open()
    try:
        for c in customers:
            ticket = await store.active_for_conversation(c.sender)
            if ticket is None:
                continue
            if ticket.status == "waiting":
                ticket = await store.claim(ticket.id, "sim_agent")
            await store.close_ticket(ticket.id, "sim_agent", "resolved")
            result.tickets_closed += 1
            if await store.rate(c.sender, c.rating) is not None:
                result.ratings += 1
    finally:
        await store.close()


def simulate(base_url: str, customers: int, seed: int, db_url: Optional[str] = None,
             pause: bool = False) -> SimulationResult:
    result = SimulationResult()
    started = time.perf_counter()
    people = plan(customers, seed)
    for c in people:
        result.customers += 1
        for text in c.messages:
            try:
                replies = send(base_url, c.sender, text)
            except StoreUnavailable as exc:
                result.errors.append(str(exc))
                if len(result.errors) >= 5:
                    raise
                continue
            result.messages += 1
            result.replies += len(replies)
            if pause:
                time.sleep(c.pause_s)
    if db_url:
        asyncio.run(_play_agent(db_url, people, result))
    result.seconds = time.perf_counter() - started
    return result


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("simulate", help="drive the running assistant with reproducible zh/en traffic")
    p.add_argument("--customers", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--url", default=None, help="assistant base URL (default http://127.0.0.1:$KEFU_RASA_PORT)")
    p.add_argument("--no-agents", action="store_true", help="do not close tickets and rate as the agents")
    p.add_argument("--pause", action="store_true", help="short random pauses between messages")


def main(args: argparse.Namespace, settings: Settings) -> int:
    base = args.url or f"http://127.0.0.1:{settings.rasa_port}"
    if not base.startswith(("http://", "https://")):
        raise BadInput("--url must start with http:// or https://")
    if args.no_agents:
        result = simulate(base, args.customers, args.seed, pause=args.pause)
    else:
        with tracker_database(settings) as url:
            result = simulate(base, args.customers, args.seed, url, pause=args.pause)
    print(f"simulated {result.customers} customers, {result.messages} messages, {result.replies} replies, "
          f"{result.tickets_closed} tickets closed, {result.ratings} ratings, {len(result.errors)} errors "
          f"in {result.seconds:.1f} s")
    return 0 if not result.errors else 1
