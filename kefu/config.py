"""The one place Kefu reads configuration (environment, then an untracked `.env`).

Like starlette's `Config`: values are read lazily through `load_settings()`, never at
import time, and every variable is documented here and in docs/configuration.md.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from kefu.dburl import DatabaseURL, redact
from kefu.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the header carrying KEFU_ACTIONS_SECRET from the Rasa server (endpoints.yml) to the action server
ACTIONS_SECRET_HEADER = "X-Kefu-Actions-Secret"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines of a `.env` file (comments and blanks ignored)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _port(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a port number, got {raw!r}") from exc
    if not 0 < value < 65536:
        raise ConfigError(f"{key} must be between 1 and 65535, got {value}")
    return value


def _positive(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key) or str(default)
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from exc
    if value < 1:
        raise ConfigError(f"{key} must be positive")
    return value


def _origins(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    """Comma-separated `scheme://host[:port]` origins; a typo must fail at start, not open the door."""
    items = tuple(item.strip().rstrip("/") for item in (env.get(key) or "").split(",") if item.strip())
    for item in items:
        if not _ORIGIN.fullmatch(item):
            raise ConfigError(f"{key}: {item!r} is not an origin like https://shop.example or http://host:8080")
    return items


def _url(env: Mapping[str, str], key: str, schemes: tuple[str, ...]) -> Optional[str]:
    raw = env.get(key) or None
    if raw is None:
        return None
    if DatabaseURL(raw).scheme not in schemes:
        raise ConfigError(f"{key} must start with one of {', '.join(s + '://' for s in schemes)}")
    return raw


@dataclass(frozen=True)
class Settings:
    """Every setting Kefu's processes share. Build with `load_settings()`."""

    # URLs stay the strings configured (drivers and child environments take them as they are);
    # parse them with kefu.dburl.DatabaseURL, and ask tracker_database_url() for the tracker's database.
    postgres_url: Optional[str] = field(default=None, repr=False)
    redis_url: Optional[str] = field(default=None, repr=False)
    host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    # the action server's interface, and the secret header Rasa sends it (ops/action_server.py)
    actions_host: str = "127.0.0.1"
    actions_secret: Optional[str] = field(default=None, repr=False)
    var_dir: Path = PROJECT_ROOT / "var"
    model_dir: Path = PROJECT_ROOT / "models"
    database: str = "kefu"
    rasa_token: Optional[str] = field(default=None, repr=False)
    max_message_chars: int = 2000
    # request bodies above this are answered 413 before they are read (Rasa server and console)
    max_request_bytes: int = 256 * 1024
    # host-page origins allowed to embed the web chat widget (and to open its socket.io connection)
    widget_origins: tuple[str, ...] = ()
    # customer-channel rate limits in `limits` notation (kefu/ratelimit.py); None = off (docs/channels.md)
    rate_ip: Optional[str] = "60/minute"
    rate_sender: Optional[str] = "20/minute"
    rate_new_senders: Optional[str] = "10/10 minutes"
    log_level: str = "INFO"
    # smart routing: thresholds, skill groups, automation level, hours (kefu/routing/settings.py)
    routing_file: Path = PROJECT_ROOT / "data" / "routing.yml"
    # Knowledge base (knowledge/): FAQ and case stores default to the PostgreSQL URL (embedded: set by the launcher).
    faq_url: Optional[str] = field(default=None, repr=False)
    cases_url: Optional[str] = field(default=None, repr=False)
    elasticsearch_url: Optional[str] = field(default=None, repr=False)
    # Knowledge graph (knowledge/graph): unset → the local FalkorDB `kefu run` starts on graph_port.
    graph_url: Optional[str] = field(default=None, repr=False)
    graph_port: int = 6479
    neo4j_url: Optional[str] = field(default=None, repr=False)  # live Neo4j tests only
    # Agent console and live-chat adapters (handoff/console, handoff/adapters; docs/console.md).
    console_port: int = 5080
    handoff_adapter: str = "console"
    console_secure_cookies: Optional[bool] = None
    chatwoot: dict = field(default_factory=dict, repr=False, compare=False)
    slack: dict = field(default_factory=dict, repr=False, compare=False)
    # Background jobs (ops/jobs): seconds before Redis re-delivers a task whose worker vanished.
    jobs_visibility_timeout: int = 3600

    def __repr__(self) -> str:
        return (
            f"Settings(postgres_url={redact(self.postgres_url)!r}, "
            f"redis_url={redact(self.redis_url)!r}, host={self.host!r}, "
            f"rasa_port={self.rasa_port}, actions_port={self.actions_port}, "
            f"var_dir={str(self.var_dir)!r}, model_dir={str(self.model_dir)!r})"
        )

    @property
    def action_endpoint(self) -> str:
        shown = "127.0.0.1" if self.actions_host in ("0.0.0.0", "::", "") else self.actions_host
        return f"http://{shown}:{self.actions_port}/webhook"

    @property
    def actions_secret_file(self) -> Path:
        """Where `kefu run` keeps the generated action-server secret when KEFU_ACTIONS_SECRET is unset (mode 600)."""
        return self.var_dir / "run" / "actions_secret"

    @property
    def rasa_token_file(self) -> Path:
        """Where `kefu run` keeps the per-installation token of Rasa's HTTP API (mode 600)."""
        return self.var_dir / "run" / "rasa_token"

    def rasa_api_token(self) -> Optional[str]:
        """KEFU_RASA_TOKEN, else the token `kefu run` stored; None when neither exists (a client of
        the running server; only `kefu run` creates the file)."""
        if self.rasa_token is not None:
            return self.rasa_token
        path = self.rasa_token_file
        return (path.read_text(encoding="utf-8").strip() or None) if path.is_file() else None

    @property
    def chat_url(self) -> str:
        shown = "localhost" if self.host in ("127.0.0.1", "0.0.0.0") else self.host
        return f"http://{shown}:{self.rasa_port}/chat/"


def _rate(env: Mapping[str, str], key: str, default: str) -> Optional[str]:
    """A rate limit such as `60/minute` or `10/10 minutes` (checked here, not on the first request); `0` = off."""
    from limits import parse  # imported here: only the processes that read a limit pay for it

    raw = (env.get(key) or default).strip()
    if raw == "0":
        return None
    try:
        parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a rate such as 60/minute or 10/10 minutes (0 = off), got {raw!r}") from exc
    return raw


def load_settings(environ: Optional[Mapping[str, str]] = None, env_file: Optional[Path] = None) -> Settings:
    """Read settings from `environ` (default os.environ) over the `.env` file."""
    env: dict[str, str] = read_env_file(env_file or PROJECT_ROOT / ".env")
    env.update(os.environ if environ is None else environ)
    max_chars_raw = env.get("KEFU_MAX_MESSAGE_CHARS", "2000")
    try:
        max_chars = int(max_chars_raw)
    except ValueError as exc:
        raise ConfigError(f"KEFU_MAX_MESSAGE_CHARS must be an integer, got {max_chars_raw!r}") from exc
    if max_chars < 1:
        raise ConfigError("KEFU_MAX_MESSAGE_CHARS must be positive")
    return Settings(
        postgres_url=_url(env, "KEFU_POSTGRES_URL", ("postgresql", "postgres")),
        redis_url=_url(env, "KEFU_REDIS_URL", ("redis", "rediss")),
        host=env.get("KEFU_HOST", "127.0.0.1"),
        rasa_port=_port(env, "KEFU_RASA_PORT", 5005),
        actions_port=_port(env, "KEFU_ACTIONS_PORT", 5055),
        actions_host=env.get("KEFU_ACTIONS_HOST") or "127.0.0.1",
        actions_secret=env.get("KEFU_ACTIONS_SECRET") or None,
        var_dir=Path(env.get("KEFU_VAR_DIR", str(PROJECT_ROOT / "var"))),
        model_dir=Path(env.get("KEFU_MODEL_DIR", str(PROJECT_ROOT / "models"))),
        database=env.get("KEFU_DATABASE", "kefu"),
        rasa_token=env.get("KEFU_RASA_TOKEN") or None,
        max_message_chars=max_chars,
        max_request_bytes=_positive(env, "KEFU_MAX_REQUEST_BYTES", 256 * 1024),
        widget_origins=_origins(env, "KEFU_WIDGET_ORIGINS"),
        rate_ip=_rate(env, "KEFU_RATE_IP", "60/minute"),
        rate_sender=_rate(env, "KEFU_RATE_SENDER", "20/minute"),
        rate_new_senders=_rate(env, "KEFU_RATE_NEW_SENDERS", "10/10 minutes"),
        log_level=env.get("KEFU_LOG_LEVEL", "INFO").upper(),
        jobs_visibility_timeout=_port(env, "KEFU_JOBS_VISIBILITY_TIMEOUT", 3600),
        routing_file=Path(env.get("KEFU_ROUTING_FILE") or PROJECT_ROOT / "data" / "routing.yml"),
        faq_url=_url(env, "KEFU_FAQ_URL", ("postgresql", "postgres")) or env.get("KEFU_POSTGRES_URL") or None,
        cases_url=_url(env, "KEFU_CASES_URL", ("postgresql", "postgres", "elasticsearch", "http", "https"))
        or env.get("KEFU_POSTGRES_URL")
        or None,
        elasticsearch_url=_url(env, "KEFU_ELASTICSEARCH_URL", ("elasticsearch", "http", "https")),
        graph_url=_url(env, "KEFU_GRAPH_URL", ("falkordb", "neo4j", "neo4j+s", "bolt", "bolt+s")),
        graph_port=_port(env, "KEFU_GRAPH_PORT", 6479),
        neo4j_url=_url(env, "KEFU_NEO4J_URL", ("neo4j", "neo4j+s", "bolt", "bolt+s")),
        console_port=_port(env, "KEFU_CONSOLE_PORT", 5080),
        handoff_adapter=env.get("KEFU_HANDOFF_ADAPTER", "console") or "console",
        console_secure_cookies={"true": True, "1": True, "false": False, "0": False}.get(
            env.get("KEFU_CONSOLE_SECURE_COOKIES", "").lower()
        ),
        chatwoot={
            key: env[f"KEFU_CHATWOOT_{key.upper()}"]
            for key in ("url", "token", "account_id", "inbox_id", "webhook_token", "teams")
            if env.get(f"KEFU_CHATWOOT_{key.upper()}")
        },
        slack={
            key: env[f"KEFU_SLACK_{key.upper()}"]
            for key in ("api_url", "bot_token", "signing_secret", "channel")
            if env.get(f"KEFU_SLACK_{key.upper()}")
        },
    )


def read_secret(
    name: str, environ: Optional[Mapping[str, str]] = None, env_file: Optional[Path] = None
) -> Optional[str]:
    """A WeChat-family channel secret (KEFU_WECHAT_MP_*, KEFU_WECOM_*, KEFU_WECHAT_KF_*) from the
    environment over `.env`; callers never log the value. None when unset or empty."""
    env = read_env_file(env_file or PROJECT_ROOT / ".env")
    env.update(os.environ if environ is None else environ)
    return env.get(name) or None
