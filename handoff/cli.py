"""`kefu agents ...`: create, list and disable agent-console accounts.

    kefu agents add --name alice --role agent --groups cards,payments   # asks for the password
    echo "$PW" | kefu agents add --name bob --role senior --password-stdin
    kefu agents list
    kefu agents disable --name alice

Uses KEFU_POSTGRES_URL, or the embedded server in `var/pgdata` (started or attached to).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any, Optional

from psycopg_pool import AsyncConnectionPool

from handoff.console.users import ROLES, AgentStore
from kefu.config import Settings
from kefu.dburl import DatabaseURL, tracker_database_url
from kefu.errors import BadInput, KefuError
from kefu.pgserver import EmbeddedPostgres, ensure_database


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("agents", help="manage agent-console accounts")
    sub = parser.add_subparsers(dest="agents_command", required=True)
    add = sub.add_parser("add", help="create an account (or reset it with --replace)")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--groups", default="", help="comma-separated skill groups, e.g. cards,payments")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--replace", action="store_true", help="overwrite an existing account")
    sub.add_parser("list", help="list active accounts")
    disable = sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("--name", required=True)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise BadInput("the passwords differ")
    return first


def parse_groups(raw: str) -> list[str]:
    return [g.strip() for g in raw.split(",") if g.strip()]


async def _run(args: argparse.Namespace, url: str, password: Optional[str]) -> int:
    pool = AsyncConnectionPool(url, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=15)
    try:
        store = AgentStore(pool)
        await store.migrate()
        if args.agents_command == "add":
            agent = await store.add(args.name, args.role, parse_groups(args.groups), password or "", args.replace)
            print(f"agent {agent.name} ({agent.role}; groups: {', '.join(agent.groups) or '-'}) saved")
        elif args.agents_command == "list":
            for agent in await store.list():
                print(f"{agent.name}\t{agent.role}\t{','.join(agent.groups)}")
        else:
            await store.disable(args.name)
            print(f"agent {args.name} disabled")
    finally:
        await pool.close()
    return 0


def main(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args.password_stdin) if args.agents_command == "add" else None
    server: Optional[EmbeddedPostgres] = None
    try:
        url = tracker_database_url(settings)
        if url is None:
            server = EmbeddedPostgres(settings.var_dir / "pgdata")
            url = DatabaseURL(server.start()).with_database(settings.database)
        ensure_database(url)
        return asyncio.run(_run(args, str(url), password))
    except BadInput as exc:
        print(f"kefu agents: {exc.reason}", file=sys.stderr)
        return 2
    except KefuError as exc:
        print(f"kefu agents: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
