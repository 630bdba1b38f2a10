"""Deploy files: compose.yaml parses, wires Parley to PostgreSQL, names every setting; the Dockerfile's shape."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _example_settings() -> list[str]:
    return re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)


def test_compose_runs_parley_on_postgres_16_with_a_named_volume() -> None:
    compose = _compose()
    db, parley = compose["services"]["db"], compose["services"]["parley"]
    assert db["image"].startswith("postgres:16")
    volume, mount = db["volumes"][0].split(":", 1)
    assert volume in compose["volumes"] and mount == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert parley["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert parley["env_file"] == [".env"]
    database_url = parley["environment"]["DATABASE_URL"]
    assert database_url.startswith("postgresql://") and "@db:5432/" in database_url
    user, database = db["environment"]["POSTGRES_USER"], db["environment"]["POSTGRES_DB"]
    assert database_url.startswith(f"postgresql://{user}:") and database_url.endswith(f"/{database}")


def test_compose_names_every_setting_of_env_example() -> None:
    environment = _compose()["services"]["parley"]["environment"]
    assert isinstance(environment, dict)
    listed = _example_settings()
    assert len(listed) > 20  # the regex found the settings, so the comparison below means something
    assert sorted(set(listed) - set(environment)) == []
    # Passthroughs: the operator's value (shell or .env) or empty, which Parley reads as unset.
    fixed = {"DATABASE_URL", "METRICS_PORT", "METRICS_LISTEN"}
    wrong = [name for name in listed if name not in fixed and environment[name] != f"${{{name}:-}}"]
    assert wrong == []
    assert sorted(set(environment) - set(listed)) == []  # nothing Parley would not read


def health_check_command(dockerfile: str) -> list[str]:
    """The exec-form command of the HEALTHCHECK instruction (continuation lines joined)."""
    instruction = re.search(r"^HEALTHCHECK (?:.*\\\n)*.*$", dockerfile, re.MULTILINE)
    assert instruction is not None
    command = json.loads(instruction.group(0).replace("\\\n", " ").split(" CMD ", 1)[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


def test_dockerfile_runs_parley_as_a_non_root_user_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM python:3\.\d+-slim", dockerfile, re.MULTILINE)) == 2  # multi-stage, slim
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    health = health_check_command(dockerfile)
    assert health[0] == "python" and "/healthz" in health[-1] and "METRICS_PORT" in health[-1]
    assert re.search(r"^ENV (?:.*\\\n)*.*\bMETRICS_PORT=\d+", dockerfile, re.MULTILINE)  # on by default
    assert re.findall(r"^CMD (.+)$", dockerfile, re.MULTILINE)[-1] == '["parley", "run"]'
