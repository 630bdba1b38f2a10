"""Access and limit settings: platform:id lists normalised, bad values named, the Redis URL kept secret."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.settings import Settings, load_settings

REQUIRED = {"llm_base_url": "http://127.0.0.1:9/v1", "llm_api_key": "sk-x", "chat_model": "m"}


def test_platform_id_lists_are_normalised() -> None:
    settings = load_settings(
        Settings, _env_file=None, **REQUIRED, allowed_users="Telegram:123, discord:456,", admins="telegram:1"
    )
    assert settings.allowed_users == ("telegram:123", "discord:456")
    assert settings.admins == ("telegram:1",) and settings.allowed_chats == ()
    assert (settings.user_requests_per_minute, settings.user_tokens_per_day) == (20, 0)


@pytest.mark.parametrize("value", ["123", "telegram:", ":5"])
def test_an_entry_without_platform_or_id_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, _env_file=None, **REQUIRED, allowed_chats=value)
    assert caught.value.setting == "ALLOWED_CHATS" and "platform:id" in caught.value.problem


def test_redis_url_is_checked_and_hidden() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, _env_file=None, **REQUIRED, redis_url="http://nope")
    assert caught.value.setting == "REDIS_URL"
    settings = load_settings(Settings, _env_file=None, **REQUIRED, redis_url="redis://:hunter2@cache:6379/0")
    assert "hunter2" not in repr(settings)
