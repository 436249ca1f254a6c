"""The Celery application of Kefu's background jobs (Rasa-free; tasks live in `ops.jobs.tasks`).

Configuration is applied lazily (Celery's `on_configure`), so importing this module reads no
file and opens no connection. Delivery is at-least-once: `acks_late` + `reject_on_worker_lost`
put a task whose worker died back on the queue, and every task is idempotent, so a redelivery
never applies its effect twice. Beat runs the monthly model iteration, the nightly warm-up and report, and the weekly
ticket clustering.

    celery -A ops.celery_app worker      # what `kefu run` starts
    celery -A ops.celery_app beat
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab

from kefu.config import load_settings
from ops.jobs.broker import broker_url

QUEUE = "kefu"
# Redis re-delivers an unacknowledged message after this long (a worker that vanished entirely);
# a crashed pool child is re-queued at once by reject_on_worker_lost. Longest task < 1 h.
VISIBILITY_TIMEOUT_S = 3600


def celery_config(broker: str, visibility_timeout: int = VISIBILITY_TIMEOUT_S) -> dict[str, Any]:
    return {
        "broker_url": broker,
        "result_backend": broker,
        "task_default_queue": QUEUE,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "result_expires": 7 * 86400,
        "broker_transport_options": {"visibility_timeout": visibility_timeout},
        "result_backend_transport_options": {"visibility_timeout": visibility_timeout},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "beat_schedule": {
            "monthly-model-iteration": {"task": "kefu.iterate", "schedule": crontab(minute=0, hour=3, day_of_month=1)},
            "nightly-cache-warmup": {"task": "kefu.warm_cache", "schedule": crontab(minute=30, hour=2)},
            "nightly-report": {"task": "kefu.report", "schedule": crontab(minute=0, hour=4)},
            "weekly-ticket-clustering": {"task": "kefu.cluster_tickets",
                                         "schedule": crontab(minute=0, hour=5, day_of_week="mon")},
        },
    }


app = Celery("kefu", include=["ops.jobs.tasks"])


@app.on_configure.connect
def _configure(sender: Celery, **_: Any) -> None:
    """Fill the config from Kefu's settings the first time Celery needs it."""
    settings = load_settings()
    sender.conf.update(celery_config(broker_url(settings), settings.jobs_visibility_timeout))
