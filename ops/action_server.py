"""`python -m ops.action_server --actions actions --port N [--host H]`: rasa-sdk's action server,
bound to loopback by default and refusing `/webhook` calls that lack the shared secret.

`python -m rasa_sdk` listens on 0.0.0.0 (SANIC_HOST) and runs any tracker anyone posts to
`/webhook`. This entry point builds the same Sanic app (`rasa_sdk.endpoint.create_app`: CORS,
auto-reload off unless asked, rasa-sdk's plugins and logging) and adds a request middleware:
every route but `/health` needs the `X-Kefu-Actions-Secret` header Rasa sends from
`endpoints.yml` (`kefu run` writes it). The secret comes from KEFU_ACTIONS_SECRET in the
environment, never from the command line; without one the server only listens on loopback.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import sys
from typing import Awaitable, Callable, Optional

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app, create_argument_parser, create_ssl_context
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from kefu.config import ACTIONS_SECRET_HEADER, load_settings
from kefu.errors import ConfigError

log = logging.getLogger("kefu.action_server")

SECRET_HEADER = ACTIONS_SECRET_HEADER
OPEN_PATHS = frozenset({"/health"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`: only processes on this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_check(secret: str) -> Callable[[Request], Awaitable[Optional[HTTPResponse]]]:
    """A request middleware answering 401 (no header) or 403 (wrong header) before any action runs."""
    expected = secret.encode("utf-8")

    async def check(request: Request) -> Optional[HTTPResponse]:
        if request.path in OPEN_PATHS:
            return None
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return response.json({"error": f"missing {SECRET_HEADER} header"}, status=401)
        if not hmac.compare_digest(given.encode("utf-8"), expected):
            return response.json({"error": f"wrong {SECRET_HEADER} header"}, status=403)
        return None

    return check


def build_app(actions: str, secret: Optional[str], cors: object = "*", auto_reload: bool = False) -> Sanic:
    """rasa-sdk's app with its plugins, plus the secret check when a secret is set."""
    app = create_app(actions, cors_origins=cors, auto_reload=auto_reload)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    if secret:
        app.register_middleware(secret_check(secret), "request")
    return app


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = create_argument_parser()
    parser.add_argument("--host", default=None, help="interface to listen on (default: KEFU_ACTIONS_HOST, 127.0.0.1)")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> None:
    """Configure logging as `python -m rasa_sdk` does, check the exposure, serve."""
    args = parse_args(argv)
    settings = load_settings()
    host = args.host or settings.actions_host
    secret = settings.actions_secret
    if not secret and not is_loopback(host):
        raise ConfigError(f"the action server would listen on {host} without KEFU_ACTIONS_SECRET; set one")
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file, args.loglevel, args.logging_config_file
    )
    utils.update_sanic_log_level()
    if not secret:
        log.warning("no KEFU_ACTIONS_SECRET: /webhook accepts any local caller")
    app = build_app(args.actions, secret, args.cors, args.auto_reload)
    ssl_context = create_ssl_context(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    log.info("Action endpoint is up and running on %s://%s:%d", "https" if ssl_context else "http", host, args.port)
    app.run(host, args.port, ssl=ssl_context, workers=utils.number_of_sanic_workers())


if __name__ == "__main__":
    try:
        main()
    except ConfigError as exc:
        sys.exit(f"kefu action server: {exc}")
