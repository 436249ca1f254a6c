"""Channel configuration: credentials.yml options plus secrets from the environment, clear
errors when something is missing, and the Slack manifest matching the mounted route."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from custom_components.channels.slack import KefuSlackInput
from custom_components.channels.wechat.kf import WeChatKfInput
from custom_components.channels.wechat.mp import WeChatMPInput
from custom_components.channels.wechat.wecom import WeComInput
from kefu.config import PROJECT_ROOT
from kefu.errors import ConfigError

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_WECHAT_MP_TOKEN", "TOK-VALUE")
    monkeypatch.setenv("KEFU_WECHAT_MP_APP_ID", "wx123")
    monkeypatch.setenv("KEFU_WECHAT_MP_SECRET", "SEC-VALUE")
    monkeypatch.setenv("KEFU_WECHAT_MP_ENCODING_AES_KEY", KEY)
    channel = WeChatMPInput.from_credentials({"mode": "compatible", "menu_intents": {"K": "/greet"}})
    assert (channel.token, channel.app_id, channel.mode) == ("TOK-VALUE", "wx123", "compatible")
    assert channel.menu_intents == {"K": "/greet"}
    assert "TOK-VALUE" not in repr(channel) and "SEC-VALUE" not in repr(channel.api)
    assert KEY not in repr(channel.envelope)
    assert channel.url_prefix() == "wechat_mp"


def test_wecom_is_always_safe_mode_and_kf_reads_its_servicer(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("KEFU_WECOM", "KEFU_WECHAT_KF"):
        monkeypatch.setenv(f"{prefix}_TOKEN", "t")
        monkeypatch.setenv(f"{prefix}_APP_ID", "ww1")
        monkeypatch.setenv(f"{prefix}_ENCODING_AES_KEY", KEY)
    assert WeComInput.from_credentials({"mode": "plaintext"}).mode == "safe"
    kf = WeChatKfInput.from_credentials({"servicer_userid": "lisi"})
    assert (kf.name(), kf.servicer_userid, kf.mode) == ("wechat_kf", "lisi", "safe")


@pytest.mark.parametrize(
    "credentials",
    [{}, {"token": "t"}, {"token": "t", "app_id": "a", "mode": "bogus"}, {"token": "t", "app_id": "a"},
     {"token": "t", "app_id": "a", "encoding_aes_key": "short"}, {"token": "t", "app_id": "a", "menu_intents": [1]},
     {"token": "t", "app_id": "a", "mode": "plaintext", "reply_budget_s": "soon"}],
    ids=["nothing", "no-app-id", "bad-mode", "safe-without-key", "bad-key", "menu-not-a-mapping", "bad-budget"],
)
def test_missing_or_bad_configuration_is_a_config_error(credentials: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOKEN", "APP_ID", "SECRET", "ENCODING_AES_KEY"):
        monkeypatch.delenv(f"KEFU_WECHAT_MP_{name}", raising=False)
    monkeypatch.setattr("kefu.config.PROJECT_ROOT", Path("/nonexistent"))
    with pytest.raises(ConfigError):
        WeChatMPInput.from_credentials(credentials)


def test_slack_needs_token_and_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("KEFU_SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.setattr("kefu.config.PROJECT_ROOT", Path("/nonexistent"))
    with pytest.raises(ConfigError):
        KefuSlackInput.from_credentials({})
    monkeypatch.setenv("KEFU_SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("KEFU_SLACK_SIGNING_SECRET", "s3cr3t")
    channel = KefuSlackInput.from_credentials({"use_threads": True})
    assert channel.use_threads and "xoxb-1" not in repr(channel) and "s3cr3t" not in repr(channel)


def test_slack_manifest_points_at_the_mounted_webhook() -> None:
    manifest = yaml.safe_load((PROJECT_ROOT / "docs" / "slack-app-manifest.yml").read_text(encoding="utf-8"))
    path = f"/webhooks/{KefuSlackInput.name()}/webhook"
    assert manifest["settings"]["event_subscriptions"]["request_url"].endswith(path)
    assert manifest["settings"]["interactivity"]["request_url"].endswith(path)
    assert {"chat:write", "im:history"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"message.im", "app_mention"} <= set(manifest["settings"]["event_subscriptions"]["bot_events"])
