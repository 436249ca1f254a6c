"""Pure parts of the load benchmark (bench/load.py): conversation scripts, the Poisson arrival
schedule, percentiles and the per-phase summary. No servers, no I/O.

The scripts are what real customers of the assistant type (phrases from rasa_project/tests and
rasa_project/data): greetings, shop and banking FAQ questions, the lost-card, order-lookup and
return forms with their slots, thanks and goodbye, in Chinese, English and mixed. Two of the ten
ask for a human part-way; after the handoff Kefu pauses the bot, so their remaining turns are a
customer typing while they wait (answered with no bot message, still a full server turn).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

TURNS = 8
CLIENT = "client"  # the load generator's own process: sampled, but not in the servers' totals


@dataclass(frozen=True)
class Script:
    name: str
    lang: str  # zh | en | mixed
    turns: tuple[str, ...]
    handoff: bool = False


SCRIPTS: tuple[Script, ...] = (
    Script(
        "faq-tour-zh",
        "zh",
        (
            "您好，想咨询点事情",
            "下单以后大概几天能送到杭州啊",
            "现在店里有啥优惠券能领不",
            "你们信用卡一年年费要交多少钱",
            "手机银行一天最多可以转出去多少钱",
            "网银登录密码忘记了 怎么重新设置一个",
            "好的 谢谢你啦",
            "没别的事了，拜拜啦",
        ),
    ),
    Script(
        "lost-card-zh",
        "zh",
        (
            "哈喽 早上好呀",
            "我银行卡找不着了，快帮我挂失一下",
            "尾号是6217",
            "我的手机号是13812345678",
            "挂失以后卡里还剩多少余额怎么查",
            "想贷款买辆车，现在利率大概多少",
            "太好了 谢谢谢谢",
            "好的 那我先下线了 拜",
        ),
    ),
    Script(
        "order-return-zh",
        "zh",
        (
            "在吗 亲",
            "我前几天买的东西现在到哪儿了，帮我查查",
            "订单号SO2411150457",
            "那我能开个电子发票吗",
            "买的东西不满意 想退货",
            "单号是DD2410010456",
            "鞋码不合适，偏小",
            "退款大概多久能回到我卡上",
        ),
    ),
    Script(
        "chitchat-faq-zh",
        "zh",
        (
            "在吗 亲",
            "给我讲个冷笑话呗",
            "你是不是机器人在自动回我",
            "那我想问下app上怎么临时冻结我的卡",
            "转账限额是多少",
            "信用卡年费多少",
            "好嘞 谢谢",
            "拜拜咯",
        ),
    ),
    Script(
        "faq-tour-en",
        "en",
        (
            "hi, anybody around?",
            "how many days does delivery to shanghai usually take",
            "do you have any discount coupons right now",
            "is there a yearly fee for the card",
            "what's the max i can transfer in one day from the app",
            "i forgot my online banking password, how can i reset it",
            "great, thanks a bunch",
            "ok that's all, bye now",
        ),
    ),
    Script(
        "lost-card-en",
        "en",
        (
            "good morning!",
            "i think i lost my bank card, please block it",
            "ends in 5128",
            "my phone is 415-555-0199",
            "wait, how much is the fee for a replacement card?",
            "how do i unlock my frozen card",
            "thank you, that was quick",
            "alright, bye for today",
        ),
    ),
    Script(
        "order-return-en",
        "en",
        (
            "hey there",
            "can you tell me where my package is",
            "order id is SO2411150457",
            "can i get an invoice for it emailed to me",
            "i'd like to send back something i bought",
            "order id is DD2410010456",
            "they're a size too small for me",
            "cool thanks",
        ),
    ),
    Script(
        "mixed",
        "mixed",
        (
            "你好",
            "where is my order",
            "订单号KM2411120088",
            "转账限额是多少",
            "can i get an invoice",
            "信用卡年费多少",
            "thanks!",
            "拜拜",
        ),
    ),
    Script(
        "handoff-zh",
        "zh",
        (
            "你好呀 小助手",
            "下单都四五天了还没收到货 咋回事",
            "对了 你们一般是用哪家快递发货的",
            "哦 单号DD2411050123",
            "别问了，直接给我转人工客服",
            "好的 我等着",
            "大概要等多久啊",
            "谢谢",
        ),
        handoff=True,
    ),
    Script(
        "handoff-en",
        "en",
        (
            "hello hello",
            "wheres my order at",
            "btw can you ship it to hong kong",
            "ok the number is DD2411050123",
            "just connect me with a real person please",
            "ok i'll wait",
            "how long will it take?",
            "thanks",
        ),
        handoff=True,
    ),
)

# One customer, 150 turns in a row (long-session growth): bot-path messages only (FAQ,
# greetings, thanks), so the bot answers every turn and the conversation never pauses.
LONG_SESSION_CYCLE: tuple[str, ...] = (
    "你好",
    "下单以后大概几天能送到杭州啊",
    "is there a yearly fee for the card",
    "现在店里有啥优惠券能领不",
    "what's the max i can transfer in one day from the app",
    "网银登录密码忘记了 怎么重新设置一个",
    "thanks!",
    "how many days does delivery to shanghai usually take",
    "你们信用卡一年年费要交多少钱",
    "do you have any discount coupons right now",
    "手机银行一天最多可以转出去多少钱",
    "好的 谢谢你啦",
    "i forgot my online banking password, how can i reset it",
    "想贷款买辆车，现在利率大概多少",
    "what interest rate do you charge on car loans",
)


def long_session_turns(n: int = 150) -> List[str]:
    return [LONG_SESSION_CYCLE[i % len(LONG_SESSION_CYCLE)] for i in range(n)]


def script_for(index: int) -> Script:
    """The index-th customer's script: round-robin over SCRIPTS."""
    return SCRIPTS[index % len(SCRIPTS)]


def poisson_offsets(rate: float, duration: float, rng: random.Random) -> List[float]:
    """Arrival times (seconds from 0, < duration) of a Poisson process of `rate` per second.

    Bounded: never more than 3 x the expected count + 100 arrivals."""
    if rate <= 0 or duration <= 0:
        return []
    cap = int(rate * duration * 3) + 100
    out: List[float] = []
    t = rng.expovariate(rate)
    while t < duration and len(out) < cap:
        out.append(t)
        t += rng.expovariate(rate)
    return out


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """q-quantile (0..1) with linear interpolation between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * min(1.0, max(0.0, q))
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> Optional[float]:
    return percentile(values, 0.5)


@dataclass
class Turn:
    """One customer message and what came of it. Times are seconds (monotonic clock)."""

    sent: float
    done_ms: Optional[float] = None  # REST: HTTP round trip; socket.io: until the server's ack (turn processed)
    first_ms: Optional[float] = None  # socket.io: until the first bot_uttered (None if the turn had none)
    bot_messages: int = 0
    error: Optional[str] = None  # "timeout", "http 500", "kefu_error: ...", "connect: ..."

    @property
    def ok(self) -> bool:
        return self.error is None and self.done_ms is not None


@dataclass
class PhaseResult:
    phase: str  # closed | open | long
    load: float  # customers (closed) or msg/s (open)
    channel: str
    target: str
    duration: float
    started: float = 0.0  # monotonic time the phase window opened
    turns: List[Turn] = field(default_factory=list)
    procs: Dict[str, Dict[str, float]] = field(default_factory=dict)  # name -> {"cpu": %, "rss_mb": peak}
    notes: Dict[str, float] = field(default_factory=dict)


def summarise(result: PhaseResult) -> Dict[str, Optional[float]]:
    """msgs, msg/s (turns answered within the phase window / duration), latency percentiles in ms
    (answered turns), errors, and the servers' CPU/RSS totals (the load client excluded)."""
    turns = result.turns
    ok = [t for t in turns if t.ok]
    done = [t.done_ms for t in ok if t.done_ms is not None]
    first = [t.first_ms for t in ok if t.first_ms is not None]
    end = result.started + result.duration
    in_window = [t for t in ok if t.sent + (t.done_ms or 0) / 1000 <= end]
    servers = {name: p for name, p in result.procs.items() if name != CLIENT}
    out: Dict[str, Optional[float]] = {
        "msgs": float(len(turns)),
        "msg_s": len(in_window) / result.duration if result.duration > 0 else None,
        "p50": percentile(done, 0.5),
        "p95": percentile(done, 0.95),
        "p99": percentile(done, 0.99),
        "first_p50": percentile(first, 0.5),
        "errors": float(len(turns) - len(ok)),
        "cpu_total": sum(p["cpu"] for p in servers.values()) if servers else None,
        "rss_total": sum(p["rss_mb"] for p in servers.values()) if servers else None,
        "cpu_rasa": result.procs.get("rasa", {}).get("cpu"),
        "rss_rasa": result.procs.get("rasa", {}).get("rss_mb"),
    }
    out.update(result.notes)
    return out


def error_kinds(turns: Sequence[Turn]) -> Dict[str, int]:
    kinds: Dict[str, int] = {}
    for turn in turns:
        if turn.error is not None:
            key = turn.error.split(":")[0]
            kinds[key] = kinds.get(key, 0) + 1
    return kinds
