"""Settings: names, normalisation, one-line errors, secrets hidden, `.env.example` complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import DatabaseSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"llm_base_url": "http://127.0.0.1:9/v1/", "llm_api_key": "sk-secret-123", "chat_model": "m"}


def test_missing_setting_names_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, _env_file=None, llm_api_key="k", chat_model="m")
    assert caught.value.setting == "LLM_BASE_URL" and caught.value.problem == "is not set"


def test_invalid_setting_names_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, _env_file=None, **REQUIRED, stream_idle_timeout="soon")
    assert caught.value.setting == "STREAM_IDLE_TIMEOUT"
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, _env_file=None, **{**REQUIRED, "llm_base_url": "ftp://x"})
    assert caught.value.setting == "LLM_BASE_URL"


def test_environment_and_normalisation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CHAT_MODEL=from-dotenv\nLLM_API_KEY=sk-dotenv\n")
    monkeypatch.setenv("LLM_BASE_URL", "https://gw.example/v1/")
    monkeypatch.setenv("ALLOWED_MODELS", "a/b, c/d ,")
    monkeypatch.setenv("LLM_EXTRA_BODY", '{"prompt_cache_key": "k", "provider": {"order": ["x"]}}')
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    monkeypatch.setenv("SHOW_REASONING", "FULL")
    settings = load_settings(Settings)
    assert settings.llm_base_url == "https://gw.example/v1"
    assert settings.chat_model == "from-dotenv"
    assert settings.allowed_models == ("a/b", "c/d")
    assert settings.llm_extra_body["provider"] == {"order": ["x"]}
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.show_reasoning == "full"
    assert "sk-dotenv" not in repr(settings) and "sk-dotenv" not in str(settings.model_dump())


def test_database_settings_need_no_llm_settings() -> None:
    assert load_settings(DatabaseSettings, _env_file=None).database_url == "sqlite+aiosqlite:///parley.db"
    with pytest.raises(ConfigError) as caught:
        load_settings(DatabaseSettings, _env_file=None, database_url="mysql://x")
    assert caught.value.setting == "DATABASE_URL"


def test_env_example_lists_exactly_the_settings() -> None:
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_readme_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in readme]
    assert missing == []


def test_settings_holding_seconds_are_named_in_seconds() -> None:
    durations = [name for name in Settings.model_fields if any(w in name for w in ("timeout", "interval", "grace"))]
    assert len(durations) >= 6  # the words found the durations, so the check below means something
    assert [name for name in durations if not name.endswith("_seconds")] == []


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("STREAM_IDLE_TIMEOUT", "STREAM_IDLE_TIMEOUT_SECONDS", "stream_idle_timeout_seconds"),
        ("IMAGE_DOWNLOAD_TIMEOUT", "IMAGE_DOWNLOAD_TIMEOUT_SECONDS", "image_download_timeout_seconds"),
    ],
)
def test_renamed_seconds_settings_still_read_their_old_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, old: str, new: str, field: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"{old}=7.5\n")
    assert getattr(load_settings(Settings, **REQUIRED), field) == 7.5  # from .env
    monkeypatch.setenv(old, "8")
    assert getattr(load_settings(Settings, **REQUIRED), field) == 8.0  # the environment overrides .env
    monkeypatch.setenv(new, "")  # compose passes unset settings as empty: the old name still counts
    assert getattr(load_settings(Settings, **REQUIRED), field) == 8.0
    monkeypatch.setenv(new, "9")
    assert getattr(load_settings(Settings, **REQUIRED), field) == 9.0  # the new name wins
    monkeypatch.setenv(old, "soon")
    monkeypatch.delenv(new)
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, **REQUIRED)
    assert caught.value.setting == f"{new} or {old}"  # the error names the variable the operator set
