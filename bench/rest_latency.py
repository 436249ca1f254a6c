"""Start the real stack (embedded PostgreSQL unless KEFU_POSTGRES_URL is set) and measure:
server start-up to ready, then p50/p95 of N REST round trips (zh and en messages).

    python bench/rest_latency.py [--n 100]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kefu.config import load_settings  # noqa: E402
from kefu.modelplan import model_path  # noqa: E402
from ops.runner import Stack  # noqa: E402

MESSAGES = ["你好", "我的卡丢了怎么办", "信用卡年费多少", "where is my order", "how do i reset my password",
            "退货要怎么弄", "thanks!", "转账限额是多少", "can i get an invoice", "人工客服"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        env = {"KEFU_RASA_PORT": str(free_port()), "KEFU_ACTIONS_PORT": str(free_port()), "KEFU_VAR_DIR": tmp}
        if os.environ.get("KEFU_POSTGRES_URL"):
            env["KEFU_POSTGRES_URL"] = os.environ["KEFU_POSTGRES_URL"]
        settings = load_settings(env, env_file=Path(tmp) / "none")
        stack = Stack(settings, model_path(settings))
        started = time.monotonic()
        try:
            stack.start()
            ready_s = time.monotonic() - started
            url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook"
            requests.post(url, json={"sender": "warmup", "message": "hi"}, timeout=60)
            timings: list[float] = []
            sender = ""
            for i in range(args.n):
                if i % len(MESSAGES) == 0:  # a new customer every ten messages
                    sender = f"bench-{uuid.uuid4().hex[:6]}"
                t0 = time.perf_counter()
                resp = requests.post(url, json={"sender": sender, "message": MESSAGES[i % len(MESSAGES)]}, timeout=60)
                timings.append((time.perf_counter() - t0) * 1000)
                resp.raise_for_status()
        finally:
            stack.stop()
    print(f"\nREST round trips through Rasa + action server + PostgreSQL tracker store (n={args.n})")
    print("| stack start to ready | p50 | p95 | mean | max |")
    print("|---|---|---|---|---|")
    print(f"| {ready_s:.1f} s | {percentile(timings, .5):.0f} ms | {percentile(timings, .95):.0f} ms "
          f"| {statistics.mean(timings):.0f} ms | {max(timings):.0f} ms |")


if __name__ == "__main__":
    main()
