"""The servers under test of bench/load.py and the per-process CPU/RSS sampler.

- KefuTarget: the full stack as `make run` starts it (ops.runner.Stack: PostgreSQL, FalkorDB,
  action server, Rasa, agent console, Celery worker + beat) on free ports, var dir in a temp
  directory (or --var-dir).
- StockTarget: Rasa's `rasa init` assistant (default pipeline and policies), trained once into
  .rasa/bench-stock/ and reused, served by `rasa run --enable-api` with the in-memory tracker
  store, no action server, and the REST + socket.io channels.
- ProcSampler: every 0.5 s, CPU seconds and RSS of each named process tree (psutil).
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Deque, Dict, List, Optional, Tuple

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kefu.config import load_settings  # noqa: E402
from ops.jobs.broker import free_port  # noqa: E402
from ops.runner import Stack, wait_http  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STOCK_CACHE = ROOT / ".rasa" / "bench-stock"
# Rasa 3.6's SocketIOInput calls `sio.enter_room(...)` without await, a coroutine in python-socketio 5.x:
# with session_persistence the socket never joins its session's room and no bot_uttered arrives
# ("coroutine 'AsyncServer.enter_room' was never awaited"). Without it replies go to the socket
# itself (sender id = socket id, one fresh connection per customer here), which works.
STOCK_CREDENTIALS = """\
# written by bench/load.py: rasa init's REST channel plus Rasa's own socket.io channel
rest:
socketio:
  user_message_evt: user_uttered
  bot_message_evt: bot_uttered
  session_persistence: false
"""
QUIET_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
Roots = Dict[str, Tuple[int, bool]]  # process name -> (pid, include its descendants)


class ProcSampler(threading.Thread):
    """Samples CPU time and RSS of process trees; window(t0, t1) gives CPU % of one core and peak RSS."""

    def __init__(self, roots: Callable[[], Roots], interval: float = 0.5, max_samples: int = 40000) -> None:
        super().__init__(name="proc-sampler", daemon=True)
        self.roots = roots
        self.interval = interval
        self.samples: Deque[Tuple[float, Dict[str, Tuple[float, float]]]] = collections.deque(maxlen=max_samples)
        self._stop_event = threading.Event()
        self._seen: Dict[str, Dict[int, float]] = {}
        self._cum: Dict[str, float] = {}
        self._last_t: Optional[float] = None
        self._lock = threading.Lock()

    def _tree(self, pid: int, recursive: bool) -> List[psutil.Process]:
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)] if recursive else [root]
        except psutil.Error:
            return []

    def sample(self) -> Dict[str, Tuple[float, float]]:
        """One sample: name -> (CPU seconds accumulated since the first sample, RSS MiB now)."""
        now = time.monotonic()
        out: Dict[str, Tuple[float, float]] = {}
        with self._lock:
            for name, (pid, recursive) in self.roots().items():
                seen = self._seen.setdefault(name, {})
                current: Dict[int, float] = {}
                rss = 0.0
                added = 0.0
                for proc in self._tree(pid, recursive):
                    try:
                        with proc.oneshot():
                            times = proc.cpu_times()
                            cpu = times.user + times.system
                            rss += proc.memory_info().rss
                            created = proc.create_time()
                    except psutil.Error:
                        continue
                    if proc.pid in seen:
                        added += max(0.0, cpu - seen[proc.pid])
                    elif (
                        self._last_t is not None and name in self._cum and created >= time.time() - (now - self._last_t)
                    ):
                        added += cpu  # started since the previous sample: all of its CPU time is new
                    current[proc.pid] = cpu
                self._seen[name] = current
                self._cum[name] = self._cum.get(name, 0.0) + added
                out[name] = (self._cum[name], rss / 2**20)
            self._last_t = now
            self.samples.append((now, out))
        return out

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5)

    def window(self, t0: float, t1: float) -> Dict[str, Dict[str, float]]:
        """name -> {"cpu": % of one core averaged over [t0, t1], "rss_mb": peak RSS in the window}."""
        with self._lock:
            inside = [s for s in self.samples if t0 - self.interval <= s[0] <= t1 + self.interval]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        span = last[0] - first[0]
        out: Dict[str, Dict[str, float]] = {}
        for name in last[1]:
            cpu0 = first[1].get(name, (last[1][name][0], 0.0))[0]
            peak = max(s[1][name][1] for s in inside if name in s[1])
            out[name] = {"cpu": 100 * (last[1][name][0] - cpu0) / span if span > 0 else 0.0, "rss_mb": peak}
        return out


class KefuTarget:
    name = "kefu"

    def __init__(self, var_dir: Optional[Path], model: Optional[Path], log_dir: Path) -> None:
        self.var_dir = var_dir
        self.model = model
        self.log_dir = log_dir
        self._tmp: Optional[str] = None
        self.stack = None
        self.rasa_port = 0

    def start(self) -> float:
        """Start the stack; seconds from the call until every server answers (Stack.start returns)."""

        if self.var_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="kefu-load-")
        var = str(self.var_dir or self._tmp)
        env = {
            "KEFU_RASA_PORT": str(free_port()),
            "KEFU_ACTIONS_PORT": str(free_port()),
            "KEFU_GRAPH_PORT": str(free_port()),
            "KEFU_CONSOLE_PORT": str(free_port()),
            "KEFU_VAR_DIR": var,
        }
        for key in ("KEFU_POSTGRES_URL", "KEFU_REDIS_URL", "KEFU_GRAPH_URL"):  # external stores, as `make run`
            if os.environ.get(key):
                env[key] = os.environ[key]
        settings = load_settings(env, env_file=Path(var) / "no-env-file")
        model = self.model or settings.model_dir / "kefu.tar.gz"
        if not model.is_file():
            raise RuntimeError(f"no trained model at {model}; run `make model`")
        self.rasa_port = settings.rasa_port
        self.stack = Stack(settings, model)
        started = time.monotonic()
        self.stack.start()
        return time.monotonic() - started

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def roots(self) -> Roots:
        if self.stack is None:
            return {}
        roots: Roots = {c.name: (c.proc.pid, True) for c in self.stack.children if c.proc.poll() is None}
        postgres = getattr(self.stack, "postgres", None)
        pid = getattr(postgres, "pid", None) if postgres is not None else None
        if pid:
            roots["postgres"] = (pid, True)  # the postmaster and its backends
        return roots

    def stop(self) -> None:
        try:
            if self.stack is not None:
                self.stack.stop()
        finally:
            self.stack = None
            var = Path(self.var_dir or self._tmp or "")
            if (var / "log").is_dir():
                shutil.copytree(var / "log", self.log_dir / "kefu", dirs_exist_ok=True)
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None


class StockTarget:
    name = "stock"

    def __init__(self, cache: Path, log_dir: Path) -> None:
        self.cache = cache
        self.log_dir = log_dir
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0

    def model(self) -> Path:
        """The cached `rasa init` model; runs `rasa init --no-prompt` (which trains it) if there is none."""
        found = sorted((self.cache / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
        self.cache.mkdir(parents=True, exist_ok=True)
        print(
            f"stock: rasa init --no-prompt --init-dir {self.cache} (trains the default model, a few minutes)",
            flush=True,
        )
        with open(self.cache / "init.log", "wb") as out:
            code = subprocess.run(
                [sys.executable, "-m", "rasa", "init", "--no-prompt", "--init-dir", str(self.cache)],
                cwd=self.cache,
                env={**os.environ, **QUIET_ENV},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=3600,
            ).returncode
        found = sorted((self.cache / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
        if code or not found:
            raise RuntimeError(f"rasa init failed (exit {code}); see {self.cache / 'init.log'}")
        return found[-1]

    def start(self) -> float:
        model = self.model()
        credentials = self.cache / "credentials-bench.yml"
        credentials.write_text(STOCK_CREDENTIALS, encoding="utf-8")
        self.port = free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / "stock-rasa.log", "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rasa",
                "run",
                "--enable-api",
                "-m",
                str(model),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--credentials",
                str(credentials),
                "--endpoints",
                str(self.cache / "endpoints.yml"),
            ],
            cwd=self.cache,
            env={**os.environ, **QUIET_ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        wait_http(f"{self.base_url}/webhooks/rest/", 600, self.proc)
        return time.monotonic() - started

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def roots(self) -> Roots:
        return {"rasa": (self.proc.pid, True)} if self.proc is not None and self.proc.poll() is None else {}

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass
