"""Time `make run` until it prints "Kefu is ready", then stop it with Ctrl-C (SIGINT).

    python bench/make_run.py [--dir CHECKOUT]   # run in a fresh clone for a cold start

Prints the time to ready, the launcher's own start-up figure, and the time to stop.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    started = time.monotonic()
    proc = subprocess.Popen(
        ["make", "run"], cwd=args.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    ready_line = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        if "Kefu is ready" in line:
            ready_line = line
            break
        if time.monotonic() - started > args.timeout:
            break
    ready_s = time.monotonic() - started
    os.killpg(proc.pid, signal.SIGINT)
    stop_started = time.monotonic()
    rest, _ = proc.communicate(timeout=120)
    stop_s = time.monotonic() - stop_started
    launcher = re.search(r"after ([\d.]+) s", ready_line)
    print(rest[-500:])
    print("\n| make run to ready | of which servers (PostgreSQL, actions, Rasa incl. model load) | Ctrl-C to stopped |")
    print("|---|---|---|")
    print(f"| {ready_s:.1f} s | {launcher.group(1) if launcher else '?'} s | {stop_s:.1f} s |")


if __name__ == "__main__":
    main()
