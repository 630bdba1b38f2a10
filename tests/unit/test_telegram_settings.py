"""Telegram and group settings: defaults within Telegram's limits, choices normalised, bad values named."""

from __future__ import annotations

import pytest

from bots.telegram_adapter.app import file_base_url
from bots.telegram_adapter.surface import telegram_profile
from core import ConfigError, Settings, load_settings

REQUIRED = {"llm_base_url": "http://127.0.0.1:9/v1", "llm_api_key": "sk-x", "chat_model": "m"}


def test_defaults_keep_telegrams_published_pace() -> None:
    settings = load_settings(Settings, _env_file=None, **REQUIRED)
    assert settings.telegram_edit_interval_seconds >= 1.0  # about one message per second per chat
    assert settings.telegram_group_edit_interval_seconds >= 3.0  # 20 messages per minute per group
    assert (settings.telegram_stream_mode, settings.group_history, settings.group_context_messages) == (
        "auto", "chat", 0,
    )  # fmt: skip
    assert settings.telegram_webhook_url is None and settings.telegram_webhook_secret is None


def test_choices_are_normalised_and_the_secret_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_STREAM_MODE", " Edit ")
    monkeypatch.setenv("GROUP_HISTORY", "USER")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/tg/")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "Sekr1t_-value")
    settings = load_settings(Settings, _env_file=None, **REQUIRED)
    assert (settings.telegram_stream_mode, settings.group_history) == ("edit", "user")
    assert settings.telegram_webhook_url == "https://bot.example.com/tg"
    assert "Sekr1t" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("telegram_webhook_secret", "has spaces in it"),
        ("telegram_webhook_secret", "x" * 257),
        ("telegram_webhook_url", "ftp://bot.example.com"),
        ("telegram_webhook_port", "0"),
        ("telegram_stream_mode", "sometimes"),
        ("group_history", "everyone"),
        ("group_context_messages", "-1"),
        ("telegram_group_edit_interval_seconds", "0"),
    ],
)
def test_invalid_values_name_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, _env_file=None, **REQUIRED, **{name: value})
    assert caught.value.setting == name.upper()


@pytest.mark.parametrize(
    ("base", "files"),
    [
        ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot"),
        ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot"),
        ("http://host/tg/bot{token}", "http://host/tg/file/bot{token}"),
    ],
)
def test_the_file_url_sits_next_to_the_api_url(base: str, files: str) -> None:
    assert file_base_url(base) == files


def test_chat_profiles_take_their_pace_from_the_settings() -> None:
    settings = load_settings(
        Settings, _env_file=None, **REQUIRED,
        telegram_edit_interval_seconds=0.5, telegram_group_edit_interval_seconds=4.0,
    )  # fmt: skip
    private, group = telegram_profile(settings, is_group=False), telegram_profile(settings, is_group=True)
    assert (private.edit_interval_seconds, group.edit_interval_seconds) == (0.5, 4.0)
    assert (private.markup, private.length_unit, private.max_message_units) == ("entities", "utf16", 4096)
    assert telegram_profile(settings, is_group=False, drafts=True).supports_draft
    assert not telegram_profile(settings, is_group=True, drafts=True).supports_draft  # drafts: private chats only
