"""`python -m ops.console`: serve the agent console (started by `kefu run` beside Rasa).

The shell composes the console: its configuration from `kefu.config` (the tracker store's database,
Rasa on this host, the served model) and the report's live figures from `analytics.live`, which
`handoff` itself does not import.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from analytics.live import ReportFigures
from handoff.adapters import adapter_class
from handoff.console.app import ConsoleConfig, create_app
from kefu.config import Settings, load_settings
from kefu.dburl import tracker_database_url
from kefu.errors import ConfigError, KefuError
from kefu.modelplan import model_path


def console_config(settings: Settings) -> ConsoleConfig:
    """Console settings from Kefu's: same database as Rasa's tracker store, Rasa on this host."""
    url = tracker_database_url(settings)
    if url is None:
        raise ConfigError("the console needs KEFU_POSTGRES_URL (`kefu run` sets it for the embedded server)")
    options: dict = {}
    if settings.handoff_adapter == "chatwoot":
        options = dict(settings.chatwoot)
    elif settings.handoff_adapter == "slack":
        options = dict(settings.slack)
    adapter_class(settings.handoff_adapter)(links=None, **options)  # fail now, naming the missing variable
    return ConsoleConfig(
        postgres_url=str(url),
        rasa_url=f"http://127.0.0.1:{settings.rasa_port}",
        rasa_token=settings.rasa_api_token(),
        adapter=settings.handoff_adapter,
        adapter_options=options,
        secure_cookies=settings.console_secure_cookies,
        model_path=model_path(settings),
        max_request_bytes=settings.max_request_bytes,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.console", description=__doc__)
    parser.add_argument("--host", default=None, help="interface (default KEFU_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default KEFU_CONSOLE_PORT, 5080)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        config = console_config(settings)
    except KefuError as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config, live_metrics=ReportFigures())
    app.run(host=args.host or settings.host, port=args.port or settings.console_port, access_log=False,
            motd=False, workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
