"""Console accounts, sessions and failed logins in PostgreSQL (`console_agents`, `console_sessions`,
`console_login_failures`).

Passwords are hashed with `hashlib.scrypt` (memory-hard, stdlib: no extra dependency) at OWASP's
cost (N=2^17, r=8, p=1: ~0.4 s and 128 MiB each), in worker threads behind a semaphore so the
console's one event loop keeps serving agents while logins hash; hashes of older parameters still
verify and are re-hashed at the next successful login. Sessions are server-side rows keyed by the
SHA-256 of a random cookie token, so a stolen database dump holds no usable cookie and a console
restart keeps agents logged in; replacing or disabling an account ends its sessions. Failed logins
are counted in `console_login_failures` (see `LoginFailures`).
"""

from __future__ import annotations

import asyncio
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
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1  # OWASP Password Storage Cheat Sheet
SCRYPT_MAXMEM = 256 * 1024 * 1024  # N=2^17, r=8 needs 128 MiB; hashlib's default cap is 32 MiB
HASH_SLOTS = 2  # concurrent hashes (the console's machine has 2 cores)
SESSION_TTL = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
NAME_FAILURES_ALLOWED = 5  # per account name in FAILURE_WINDOW
IP_FAILURES_ALLOWED = 20  # per client IP in FAILURE_WINDOW, across names
_FAILURES_LOCK = 0x6B656675  # advisory lock serialising the check-and-count of login attempts

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
CREATE TABLE IF NOT EXISTS console_login_failures (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    key text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS console_login_failures_key ON console_login_failures (kind, key, at);
CREATE INDEX IF NOT EXISTS console_login_failures_at ON console_login_failures (at);
"""


def hash_password(password: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """`scrypt$n$r$p$salt$hash` (base64), so parameters can be raised later (tests may pass a lower n)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=SCRYPT_MAXMEM)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Checks against the parameters stored in the hash, so older hashes keep verifying."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected), maxmem=SCRYPT_MAXMEM)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str) -> bool:
    """True when a hash was made with other parameters than today's (re-hashed at the next login)."""
    return stored.split("$")[:4] != ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P)]


# A fixed hash to verify against when the user does not exist, so timing does not tell.
_DUMMY_HASH: Optional[str] = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


def _check(password: str, stored: Optional[str]) -> bool:
    """`verify_password`, against the dummy hash when there is no account (runs in a worker thread)."""
    return verify_password(password, stored or _dummy_hash()) and stored is not None


class Hasher:
    """scrypt in worker threads, at most `slots` at a time: the event loop never runs a hash, and a burst
    of logins queues here instead of taking every core from the agents' requests."""

    def __init__(self, slots: int = HASH_SLOTS) -> None:
        self.slots = asyncio.Semaphore(slots)

    async def hash(self, password: str) -> str:
        async with self.slots:
            return await asyncio.to_thread(hash_password, password)

    async def verify(self, password: str, stored: Optional[str]) -> bool:
        async with self.slots:
            return await asyncio.to_thread(_check, password, stored)


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
        self.hasher = Hasher()
        self.failures = LoginFailures(pool)

    async def migrate(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(SCHEMA)

    async def add(self, name: str, role: str, groups: list[str], password: str, replace: bool = False) -> Agent:
        """Create an account; with `replace`, reset an existing one and end its sessions."""
        name, role, groups, password = check_agent_fields(name, role, groups, password)
        hashed = await self.hasher.hash(password)
        conflict = (
            "DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, "
            "groups = EXCLUDED.groups, disabled = false"
            if replace
            else "DO NOTHING"
        )
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO console_agents (name, password_hash, role, groups) VALUES (%s, %s, %s, %s) "
                f"ON CONFLICT (name) {conflict} RETURNING name",
                (name, hashed, role, Jsonb(groups)),
            )
            if await cur.fetchone() is None:
                raise BadInput(f"agent {name!r} already exists (use --replace to reset it)")
            await conn.execute("DELETE FROM console_sessions WHERE agent = %s", (name,))
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
        """The agent if the password matches; None otherwise (same work either way).

        A hash made with older parameters is replaced by one with today's after the match."""
        if len(name) > 64 or len(password) > MAX_PASSWORD:
            return None
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT name, role, groups, password_hash FROM console_agents WHERE name = %s AND NOT disabled",
                (name,),
            )
            row = await cur.fetchone()
        stored = row["password_hash"] if row else None
        if not await self.hasher.verify(password, stored) or row is None or stored is None:
            return None  # verified against the dummy hash too: an unknown name takes as long as a wrong password
        if needs_rehash(stored):
            upgraded = await self.hasher.hash(password)
            async with self.pool.connection() as conn:
                await conn.execute(
                    "UPDATE console_agents SET password_hash = %s WHERE name = %s AND password_hash = %s",
                    (upgraded, name, stored),
                )
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


# seconds until the IP's or the name's count drops below its limit (NULL: under both limits)
_WAIT_SQL = """
SELECT max(extract(epoch FROM at + %(window)s - now())) FROM (
    SELECT kind, at, row_number() OVER (PARTITION BY kind ORDER BY at DESC) AS nth
    FROM console_login_failures
    WHERE ((kind = 'ip' AND key = %(ip)s) OR (kind = 'name' AND key = %(name)s)) AND at > now() - %(window)s
) recent
WHERE (kind = 'ip' AND nth = %(per_ip)s) OR (kind = 'name' AND nth = %(per_name)s)
"""
# count the attempt against the IP (and the name); rows that left the window expire one by one
_COUNT_SQL = """
WITH expired AS (DELETE FROM console_login_failures WHERE at <= now() - %(window)s)
INSERT INTO console_login_failures (kind, key)
SELECT kind, key FROM (VALUES ('ip', %(ip)s::text), ('name', %(name)s::text)) AS v (kind, key) WHERE key IS NOT NULL
RETURNING id
"""


@dataclass(frozen=True)
class Attempt:
    """A login attempt counted as a failure until it succeeds (the rows' ids, and the name counted)."""

    name: Optional[str]
    ids: tuple[int, ...]


class LoginFailures:
    """Failed logins per account name and per client IP over a sliding window, in PostgreSQL.

    Limits hold across console restarts and processes; each row expires on its own once it leaves
    the window, so no amount of names tracked clears anyone's count."""

    def __init__(self, pool: AsyncConnectionPool, per_name: int = NAME_FAILURES_ALLOWED,
                 per_ip: int = IP_FAILURES_ALLOWED, window: timedelta = FAILURE_WINDOW) -> None:
        self.pool = pool
        self.limits = {"name": per_name, "ip": per_ip}
        self.window = window

    async def begin(self, name: str, ip: str) -> tuple[Optional[Attempt], float]:
        """Count this attempt as a failure before the password is checked, so concurrent guesses cannot all
        slip under the limit; (None, seconds to wait) when the name or the IP has reached its limit."""
        counted = name if NAME_RE.match(name) else None  # other names cannot be accounts: the IP limit covers them
        params = {"ip": ip, "name": counted, "window": self.window, "per_ip": self.limits["ip"],
                  "per_name": self.limits["name"]}
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_FAILURES_LOCK,))
            wait = (await (await conn.execute(_WAIT_SQL, params)).fetchone())[0]
            if wait is not None and wait > 0:
                return None, float(wait)
            ids = [row[0] for row in await (await conn.execute(_COUNT_SQL, params)).fetchall()]
        return Attempt(counted, tuple(ids)), 0.0

    async def succeeded(self, attempt: Attempt) -> None:
        """A right password: the name's failures are forgotten and this attempt is not held against the IP."""
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM console_login_failures WHERE id = ANY(%s) OR (kind = 'name' AND key = %s)",
                               (list(attempt.ids), attempt.name))
