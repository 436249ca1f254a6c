"""Console accounts and sessions in PostgreSQL (tables `console_agents`, `console_sessions`).

Passwords are hashed with `hashlib.scrypt` (memory-hard, stdlib: no extra dependency);
sessions are server-side rows keyed by the SHA-256 of a random cookie token, so a stolen
database dump holds no usable cookie and a console restart keeps agents logged in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from kefu.errors import BadInput, NotFound

ROLES = ("agent", "senior", "supervisor")
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
GROUP_RE = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_TTL = timedelta(hours=12)

SCHEMA = """
CREATE TABLE IF NOT EXISTS console_agents (
    name text PRIMARY KEY,
    password_hash text NOT NULL,
    role text NOT NULL,
    groups jsonb NOT NULL DEFAULT '[]',
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash text PRIMARY KEY,
    agent text NOT NULL REFERENCES console_agents(name) ON DELETE CASCADE,
    csrf text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
"""


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64), so parameters can be raised later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A fixed hash to verify against when the user does not exist, so timing does not tell.
_DUMMY_HASH: Optional[str] = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


@dataclass(frozen=True)
class Agent:
    name: str
    role: str
    groups: list[str] = field(default_factory=list)

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    def queues(self) -> Optional[list[str]]:
        """Queues this agent sees and may claim from; None means all (supervisor)."""
        if self.is_supervisor:
            return None
        queues = list(self.groups)
        if self.role == "senior" and "senior" not in queues:
            queues.append("senior")
        return queues

    def may_work(self, queue: str) -> bool:
        allowed = self.queues()
        return allowed is None or queue in allowed

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "groups": list(self.groups)}


@dataclass(frozen=True)
class Session:
    agent: Agent
    csrf: str
    token_hash: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_agent_fields(name: Any, role: Any, groups: Any, password: Any) -> tuple[str, str, list[str], str]:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadInput("name must be 1-64 letters, digits or _.@-")
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}")
    if not isinstance(groups, list) or not all(isinstance(g, str) and GROUP_RE.match(g) for g in groups):
        raise BadInput("groups must be lower-case names like cards, payments")
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadInput(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return name, role, sorted(set(groups)), password


class AgentStore:
    """Accounts and sessions; shares the console's connection pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(SCHEMA)

    async def add(self, name: str, role: str, groups: list[str], password: str, replace: bool = False) -> Agent:
        name, role, groups, password = check_agent_fields(name, role, groups, password)
        hashed = hash_password(password)
        conflict = (
            "DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, "
            "groups = EXCLUDED.groups, disabled = false"
            if replace
            else "DO NOTHING"
        )
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO console_agents (name, password_hash, role, groups) VALUES (%s, %s, %s, %s) "
                f"ON CONFLICT (name) {conflict} RETURNING name",
                (name, hashed, role, Jsonb(groups)),
            )
            if await cur.fetchone() is None:
                raise BadInput(f"agent {name!r} already exists (use --replace to reset it)")
        return Agent(name, role, groups)

    async def list(self) -> list[Agent]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT name, role, groups FROM console_agents WHERE NOT disabled ORDER BY name")
            return [Agent(r["name"], r["role"], list(r["groups"])) for r in await cur.fetchall()]

    async def get(self, name: str) -> Agent:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT name, role, groups FROM console_agents WHERE name = %s AND NOT disabled", (name,))
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no agent {name!r}")
        return Agent(row["name"], row["role"], list(row["groups"]))

    async def disable(self, name: str) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute("UPDATE console_agents SET disabled = true WHERE name = %s", (name,))
            if cur.rowcount == 0:
                raise NotFound(f"no agent {name!r}")
            await conn.execute("DELETE FROM console_sessions WHERE agent = %s", (name,))

    async def authenticate(self, name: str, password: str) -> Optional[Agent]:
        """The agent if the password matches; None otherwise (same work either way)."""
        if len(name) > 64 or len(password) > MAX_PASSWORD:
            return None
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT name, role, groups, password_hash FROM console_agents WHERE name = %s AND NOT disabled",
                (name,),
            )
            row = await cur.fetchone()
        stored = row["password_hash"] if row else _dummy_hash()
        if not verify_password(password, stored) or row is None:
            return None
        return Agent(row["name"], row["role"], list(row["groups"]))

    async def open_session(self, agent: Agent) -> tuple[str, Session]:
        """A new random cookie token and its session (the token itself is never stored)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = datetime.now(timezone.utc) + SESSION_TTL
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM console_sessions WHERE expires_at < now()")
            await conn.execute(
                "INSERT INTO console_sessions (token_hash, agent, csrf, expires_at) VALUES (%s, %s, %s, %s)",
                (_token_hash(token), agent.name, csrf, expires),
            )
        return token, Session(agent, csrf, _token_hash(token))

    async def session(self, token: Optional[str]) -> Optional[Session]:
        if not token or len(token) > 128:
            return None
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT s.token_hash, s.csrf, a.name, a.role, a.groups FROM console_sessions s "
                "JOIN console_agents a ON a.name = s.agent "
                "WHERE s.token_hash = %s AND s.expires_at > now() AND NOT a.disabled",
                (_token_hash(token),),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return Session(Agent(row["name"], row["role"], list(row["groups"])), row["csrf"], row["token_hash"])

    async def close_session(self, session: Session) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM console_sessions WHERE token_hash = %s", (session.token_hash,))
