"""End to end: the trained Kefu model in a real `rasa run` process with the Official Account
channel enabled through a credentials file and secrets in the environment, the tracker in
PostgreSQL, the platform API served by the local contract server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from custom_components.channels.wechat.common import parse_xml
from kefu.config import PROJECT_ROOT
from kefu.pgserver import with_database
from ops.runner import child_env, wait_http, write_endpoints
from tests.custom_components.channels.conftest import MP_APP_ID, MP_SECRET
from tests.custom_components.channels.live import wait_until
from tests.custom_components.channels.raw_http import post_chunked, post_declared
from tests.custom_components.channels.wechat_http import signed_params, text_xml
from tests.servers import drop_database, require_model, stack_settings

TOKEN = "e2e-mp-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def greet_texts() -> set[str]:
    domain = yaml.safe_load((PROJECT_ROOT / "rasa_project/domain/responses_general.yml").read_text(encoding="utf-8"))
    return {variant["text"] for variant in domain["responses"]["utter_greet"]}


@pytest.mark.servers
def test_official_account_message_through_real_rasa(pg_admin_url: str, tmp_path: Path, fake_api) -> None:
    fake, base = fake_api
    model = require_model()
    database = f"kefu_wechat_e2e_{uuid.uuid4().hex[:8]}"
    import psycopg

    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    db_url = with_database(pg_admin_url, database)
    settings = stack_settings(tmp_path, db_url)
    endpoints = write_endpoints(settings, db_url, tmp_path / "endpoints.yml")
    credentials = tmp_path / "credentials.yml"
    channel_options = {"mode": "compatible", "api_base": base, "reply_budget_s": 4.5}
    credentials.write_text(yaml.safe_dump({"custom_components.channels.wechat.mp.WeChatMPInput": channel_options}))
    env = child_env(settings, {
        "KEFU_POSTGRES_URL": db_url, "KEFU_WECHAT_MP_TOKEN": TOKEN, "KEFU_WECHAT_MP_APP_ID": MP_APP_ID,
        "KEFU_WECHAT_MP_SECRET": MP_SECRET, "KEFU_WECHAT_MP_ENCODING_AES_KEY": AES_KEY,
    })
    log = open(tmp_path / "rasa.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops.quiet", "rasa", "run", "--model", str(model), "--endpoints", str(endpoints),
         "--credentials", str(credentials), "--interface", "127.0.0.1", "--port", str(settings.rasa_port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/wechat_mp/webhook"
    try:
        wait_http(f"http://127.0.0.1:{settings.rasa_port}/webhooks/wechat_mp/", 400, proc)
        sender = f"o{uuid.uuid4().hex[:27]}"
        body = text_xml(sender, "你好", msg_id=str(uuid.uuid4().int)[:19])
        resp = requests.post(url, params=signed_params(TOKEN), data=body.encode(),
                             headers={"Content-Type": "text/xml"}, timeout=30)
        assert resp.status_code == 200
        if resp.text == "success":  # the bot took longer than the passive budget under load
            assert wait_until(lambda: fake.texts_to(sender) != [], timeout=60)
            answers = fake.texts_to(sender)
        else:
            answers = [parse_xml(resp.content)["Content"]]
        assert answers[0] in greet_texts(), answers
        retry = requests.post(url, params=signed_params(TOKEN, nonce="2"), data=body.encode(),
                              headers={"Content-Type": "text/xml"}, timeout=30)
        assert retry.text == "success"
        time.sleep(2)
        assert len(fake.texts_to(sender)) == len(answers) - (0 if resp.text == "success" else 1)
        path = "/webhooks/wechat_mp/webhook"  # Rasa's 100 MB default body cap, lowered to KEFU_MAX_REQUEST_BYTES
        chunked = post_chunked(settings.rasa_port, path, total=32 * 1024 * 1024, content_type="text/xml")
        assert chunked.status == 413 and chunked.sent < 32 * 1024 * 1024, chunked
        assert post_declared(settings.rasa_port, path, 50 * 1024 * 1024, "text/xml", timeout=30).status == 413
        for secret in (TOKEN, AES_KEY, MP_SECRET, "你好"):
            assert secret not in (tmp_path / "rasa.log").read_text(encoding="utf-8", errors="replace")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        drop_database(pg_admin_url, database)
