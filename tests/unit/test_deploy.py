"""Deploy files: compose.yaml parses, wires Parley to PostgreSQL, names every setting; the Dockerfile's shape;
requirements.lock pins every runtime dependency within pyproject's ranges. (Kubernetes: test_deploy_k8s.py.)"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

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
    # /livez: an upstream outage (/readyz failing) must not get the container restarted.
    assert health[0] == "python" and "/livez'" in health[-1] and "METRICS_PORT" in health[-1]
    assert re.search(r"^ENV (?:.*\\\n)*.*\bMETRICS_PORT=\d+", dockerfile, re.MULTILINE)  # on by default
    assert re.findall(r"^CMD (.+)$", dockerfile, re.MULTILINE)[-1] == '["parley", "run"]'


def _instructions(dockerfile: str, name: str) -> list[str]:
    """The arguments of every `name` instruction, continuation lines joined."""
    joined = dockerfile.replace("\\\n", " ")
    return re.findall(rf"^{name} (.+)$", joined, re.MULTILINE)


def test_dockerfile_installs_the_hashed_lock_then_parley_without_resolving_again() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = [run for run in _instructions(dockerfile, "RUN") if "pip install" in run]
    assert len(installs) == 2
    locked, project = installs
    assert {"--require-hashes", "--only-binary=:all:", "requirements.lock"} <= set(locked.split())
    assert "--no-deps" in project.split() and project.split()[-1] == "."
    copies = _instructions(dockerfile, "COPY")
    assert any(copy.split()[0] == "requirements.lock" for copy in copies)


def test_dockerfile_keeps_the_sqlite_default_in_a_volume() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    volumes = [path for v in _instructions(final_stage, "VOLUME") for path in json.loads(v)]
    env = " ".join(_instructions(final_stage, "ENV"))
    database_url = re.search(r"\bDATABASE_URL=sqlite\+aiosqlite:///(\S+)", env)
    assert database_url is not None
    database_file = Path(database_url.group(1))
    assert database_file.is_absolute() and str(database_file.parent) in volumes
    # Without DATABASE_URL, Settings' default `parley.db` is relative: the working directory is the volume too.
    assert _instructions(final_stage, "WORKDIR")[-1] in volumes
    # VOLUME freezes the directory: it must be given to the non-root user before.
    assert final_stage.index("RUN chown parley:parley /data") < final_stage.index("\nVOLUME ")


def _locked() -> dict[str, tuple[Version, int]]:
    """requirements.lock: name -> (pinned version, number of hashes)."""
    text = (ROOT / "requirements.lock").read_text()
    entries = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", text, re.M)
    return {canonicalize_name(name): (Version(version), hashes.count("--hash=")) for name, version, hashes in entries}


def test_the_lock_pins_every_runtime_dependency_within_its_range_with_hashes() -> None:
    locked = _locked()
    pinned_lines = re.findall(r"^[A-Za-z0-9]\S*", (ROOT / "requirements.lock").read_text(), re.M)
    assert len(locked) == len(pinned_lines) > 20  # every requirement line parsed, each an exact `==` pin
    assert [name for name, (_, hashes) in locked.items() if hashes == 0] == []  # pip --require-hashes needs them
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    missing, outside = [], []
    for line in project["dependencies"]:
        requirement = Requirement(line)
        pin = locked.get(canonicalize_name(requirement.name))
        if pin is None:
            missing.append(requirement.name)
        elif not requirement.specifier.contains(pin[0], prereleases=True):
            outside.append(f"{requirement.name} {pin[0]} not in {requirement.specifier}")
    assert missing == [] and outside == []  # else regenerate: the command is at the top of requirements.lock
    assert canonicalize_name("greenlet") in locked  # sqlalchemy[asyncio]'s extra is resolved too
