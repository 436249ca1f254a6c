"""Load benchmark: Kefu's full stack side by side with Rasa's stock `rasa init` assistant.

Simulated customers hold realistic 8-turn bilingual conversations (bench/_load_plan.py) over
REST and socket.io: closed loop at 1/10/20/50 customers (no think time, a finished customer is
replaced by a new one), open loop with Poisson arrivals at 10/20/40 msg/s, and one customer
sending 150 turns in a row (long-session growth). Per phase: messages, msg/s, p50/p95/p99, errors,
CPU % (of one core) and peak RSS per server process; plus ready-after-start and RSS after start.
The two targets run one after the other, never at once; every Kefu figure is printed beside
stock's with the ratio Kefu / stock. Markdown to stdout, JSON to bench/out/load-<time>.json.

    python bench/load.py                                     # everything (≈ 2 x 2 x 7 x 30 s + start-ups)
    python bench/load.py --only kefu --channel rest --phases closed:1,open:10 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load_drive import closed_loop, long_session, open_loop, session_factory, warm_up  # noqa: E402
from _load_plan import CLIENT, SCRIPTS, PhaseResult, error_kinds, median, summarise  # noqa: E402
from _load_procs import ROOT, STOCK_CACHE, KefuTarget, ProcSampler, StockTarget  # noqa: E402
from _load_report import fmt, long_table, phase_table, startup_table  # noqa: E402

DEFAULT_PHASES = "closed:1,closed:10,closed:20,closed:50,open:10,open:20,open:40,long"
OUT_DIR = ROOT / "bench" / "out"


def parse_phases(spec: str) -> List[Tuple[str, float]]:
    """'closed:1,open:10,long' -> [("closed", 1), ("open", 10), ("long", 150)]; long:N for N turns."""
    phases: List[Tuple[str, float]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, _, value = item.partition(":")
        if kind not in ("closed", "open", "long"):
            raise argparse.ArgumentTypeError(f"unknown phase {item!r} (closed:N, open:RATE, long[:TURNS])")
        try:
            number = float(value) if value else (150.0 if kind == "long" else float("nan"))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"bad number in phase {item!r}") from exc
        if not number > 0 or (kind != "open" and number != int(number)) or number > 1000:
            raise argparse.ArgumentTypeError(f"phase {item!r}: need a positive number (at most 1000)")
        phases.append((kind, number))
    if not phases:
        raise argparse.ArgumentTypeError("no phases")
    return phases


def long_summary(turns: List[Any]) -> Dict[str, Optional[float]]:
    ok = [t.done_ms for t in turns if t.ok]
    return {
        "turns": float(len(turns)),
        "errors": float(sum(not t.ok for t in turns)),
        "first10": median([t.done_ms for t in turns[:10] if t.ok]) if len(turns) >= 20 else None,
        "last10": median([t.done_ms for t in turns[-10:] if t.ok]) if len(turns) >= 20 else None,
        "all_ms": ok,
    }  # type: ignore[dict-item]


async def drive(
    target: Any, sampler: ProcSampler, args: argparse.Namespace, phases: List[Tuple[str, float]], out: Dict[str, Any]
) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        for channel in args.channels:
            new_session = session_factory(channel, target.base_url, args.timeout, http)
            warm = await warm_up(new_session, args.warmup)
            bad = sum(not t.ok for t in warm)
            print(
                f"[{target.name}/{channel}] warm-up: {len(warm)} turns, {bad} errors {error_kinds(warm) or ''}",
                flush=True,
            )
            if channel == args.channels[0]:
                sampler.sample()
                out["targets"][target.name]["rss_after_warmup"] = rss_now(sampler)
            for kind, load in phases:
                await asyncio.sleep(args.settle)
                if kind == "long":
                    started, turns = await long_session(new_session, int(load))
                    summary = long_summary(turns)
                    out["long"].append({"target": target.name, "channel": channel, **summary})
                    print(
                        f"[{target.name}/{channel}] long {int(load)}: turns 1-10 {fmt(summary['first10'])} ms, "
                        f"last 10 {fmt(summary['last10'])} ms, errors {summary['errors']:.0f}",
                        flush=True,
                    )
                    continue
                if kind == "closed":
                    started, turns = await closed_loop(new_session, int(load), args.duration)
                else:
                    rng = random.Random(f"{args.seed}-{channel}-{load}")
                    started, turns = await open_loop(new_session, load, args.duration, args.timeout, rng)
                sampler.sample()
                result = PhaseResult(
                    kind,
                    load,
                    channel,
                    target.name,
                    args.duration,
                    started,
                    turns,
                    sampler.window(started, started + args.duration),
                )
                summary = summarise(result)
                out["phases"].append(
                    {
                        "target": target.name,
                        "channel": channel,
                        "phase": kind,
                        "load": load,
                        "summary": summary,
                        "procs": result.procs,
                        "errors_by_kind": error_kinds(turns),
                    }
                )
                print(
                    f"[{target.name}/{channel}] {kind} {load:g}: {summary['msgs']:.0f} msgs, "
                    f"{fmt(summary['msg_s'], 1)} msg/s, p50 {fmt(summary['p50'])} ms, errors {summary['errors']:.0f} "
                    f"{error_kinds(turns) or ''}",
                    flush=True,
                )


def rss_now(sampler: ProcSampler) -> Dict[str, float]:
    last = sampler.samples[-1][1] if sampler.samples else {}
    return {name: rss for name, (_cpu, rss) in last.items() if name != CLIENT}


def run_target(target: Any, args: argparse.Namespace, phases: List[Tuple[str, float]], out: Dict[str, Any]) -> None:
    """Start the target, drive every channel and phase, stop it (also on errors and Ctrl-C/SIGTERM)."""
    sampler: Optional[ProcSampler] = None
    print(f"[{target.name}] starting ...", flush=True)
    try:
        ready_s = target.start()
        sampler = ProcSampler(lambda: {**target.roots(), CLIENT: (os.getpid(), False)})
        sampler.sample()
        sampler.start()
        out["targets"][target.name] = {
            "ready_s": ready_s,
            "rss_after_start": rss_now(sampler),
            "base_url": target.base_url,
        }
        print(
            f"[{target.name}] ready after {ready_s:.1f} s; RSS MiB {out['targets'][target.name]['rss_after_start']}",
            flush=True,
        )
        asyncio.run(drive(target, sampler, args, phases, out))
    except Exception as exc:  # report what was measured so far, then go on with the next target
        traceback.print_exc()
        out["targets"].setdefault(target.name, {})["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if sampler is not None:
            sampler.stop()
        print(f"[{target.name}] stopping ...", flush=True)
        target.stop()


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _on_sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through run_target's finally: every server is stopped


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["kefu", "stock"], help="run one target only")
    parser.add_argument("--channel", choices=["rest", "socketio", "both"], default="both")
    parser.add_argument(
        "--phases",
        type=parse_phases,
        default=parse_phases(DEFAULT_PHASES),
        help=f"comma-separated closed:CUSTOMERS, open:MSG_PER_S, long[:TURNS] (default {DEFAULT_PHASES})",
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per closed/open phase")
    parser.add_argument("--timeout", type=float, default=10.0, help="a turn not answered within this is an error")
    parser.add_argument("--warmup", type=int, default=len(SCRIPTS), help="conversations before the phases, per channel")
    parser.add_argument("--settle", type=float, default=2.0, help="pause before each phase, seconds")
    parser.add_argument("--seed", type=int, default=7, help="seed of the Poisson schedules")
    parser.add_argument("--var-dir", type=Path, help="Kefu var dir to reuse (default: a fresh temp dir)")
    parser.add_argument("--kefu-model", type=Path, help="default models/kefu.tar.gz")
    parser.add_argument("--stock-dir", type=Path, default=STOCK_CACHE, help="rasa init project, trained once")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/out/load-<time>.json)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 3600 or not 0.5 <= args.timeout <= 120 or not 0 <= args.warmup <= 100:
        parser.error("--duration 1..3600, --timeout 0.5..120, --warmup 0..100")
    args.channels = ["rest", "socketio"] if args.channel == "both" else [args.channel]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = OUT_DIR / f"load-logs-{stamp}"
    out_file = args.out or OUT_DIR / f"load-{stamp}.json"
    targets = []
    if args.only in (None, "kefu"):
        targets.append(KefuTarget(args.var_dir, args.kefu_model, log_dir))
    if args.only in (None, "stock"):
        targets.append(StockTarget(args.stock_dir, log_dir))
    out: Dict[str, Any] = {
        "meta": {
            "git": git_revision(),
            "started": stamp,
            "cpus": os.cpu_count(),
            "duration_s": args.duration,
            "timeout_s": args.timeout,
            "channels": args.channels,
            "phases": args.phases,
            "seed": args.seed,
            "scripts": [asdict(s) for s in SCRIPTS],
            "kefu_var_dir": str(args.var_dir or "fresh temp dir"),
        },
        "targets": {},
        "phases": [],
        "long": [],
    }
    signal.signal(signal.SIGTERM, _on_sigterm)
    interrupted = False
    try:
        for target in targets:
            run_target(target, args, args.phases, out)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: partial results below", flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    print_report(out, args)
    print(f"\nJSON: {out_file}\nserver logs: {log_dir}")
    return 130 if interrupted else 0


def print_report(out: Dict[str, Any], args: argparse.Namespace) -> None:
    print("\n## Ready after start (model already trained) and RSS after start\n")
    print(startup_table(out["targets"]))
    if out["phases"]:
        print(f"\n## Load phases ({args.duration:g} s each, turn timeout {args.timeout:g} s)\n")
        print(phase_table(out["phases"]))
    if out["long"]:
        print("\n## Long session: one customer, turns in a row\n")
        print(long_table(out["long"]))
    print(
        "\nmsg/s: turns answered within the phase window / its duration. Latency: REST round trip; socket.io "
        "`user_uttered` to the server's ack (whole turn processed), '1st msg' to the first `bot_uttered`. "
        "CPU %: of one core, averaged over the phase; RSS: peak in the phase; 'all' = every server process "
        "(the load client excluded). Ratio > 1: Kefu's figure is larger."
    )


if __name__ == "__main__":
    sys.exit(main())
