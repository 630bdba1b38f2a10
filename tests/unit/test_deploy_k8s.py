"""deploy/ (Kubernetes, kustomize): every variable named is a Parley setting and the whole set validates as
Settings; secrets only from the Secret; probes on paths the metrics server really serves, on METRICS_PORT;
the Discord StatefulSet's replicas and DISCORD_SHARD_COUNT agree; non-root, read-only, with resources.

The product is read on purpose (core.settings, core.metrics): the point is that the manifests agree with it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import AliasChoices, SecretStr

from core import Metrics, Settings, load_settings, serve_metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRET_NAME = "parley-secrets"
POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"

Doc = dict[str, Any]


def _kustomization() -> Doc:
    loaded = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _resources() -> list[Doc]:
    docs: list[Doc] = []
    for name in _kustomization()["resources"]:
        docs += [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc is not None]
    return docs


def _one(kind: str, name: str) -> Doc:
    found = [d for d in _resources() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def _workloads() -> list[Doc]:
    return [d for d in _resources() if d["kind"] in ("Deployment", "StatefulSet")]


def _container(workload: Doc) -> Doc:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Doc = containers[0]
    return container


def _config() -> dict[str, str]:
    data = _one("ConfigMap", "parley-config")["data"]
    assert all(isinstance(value, str) for value in data.values())  # an environment holds strings
    return dict(data)


def _secret_example() -> dict[str, str]:
    lines = (DEPLOY / "secrets.env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def _setting_names() -> set[str]:
    """The environment names Parley reads: each field's name, or its aliases, upper case."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names |= {str(a).upper() for a in alias.choices} if isinstance(alias, AliasChoices) else {name.upper()}
    return names


def _secret_settings() -> set[str]:
    """Settings whose values are secrets: SecretStr fields, and DATABASE_URL (it may carry a password)."""
    secret = {name.upper() for name, field in Settings.model_fields.items() if SecretStr in _types(field.annotation)}
    return secret | {"DATABASE_URL"}


def _types(annotation: Any) -> set[Any]:
    return {annotation, *getattr(annotation, "__args__", ())}


def _environment(workload: Doc, shard_id: str = "0") -> dict[str, str]:
    """What the container's environment holds, with the example Secret and the pod index filled in."""
    container = _container(workload)
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}  # never a whole Secret: each workload names the keys it needs
        assert source["configMapRef"]["name"] == "parley-config"
        values |= _config()
    secrets = _secret_example()
    for variable in container.get("env", []):
        name, given = variable["name"], variable.get("valueFrom", {})
        if "value" in variable:
            values[name] = variable["value"]
        elif "secretKeyRef" in given:
            assert given["secretKeyRef"]["name"] == SECRET_NAME
            values[name] = secrets[given["secretKeyRef"]["key"]]
        else:
            assert given == {"fieldRef": {"fieldPath": POD_INDEX}}
            values[name] = shard_id
    return values


def test_every_manifest_is_listed_and_the_secret_comes_from_a_git_ignored_file() -> None:
    listed = set(_kustomization()["resources"])
    assert listed == {path.name for path in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    generator = _kustomization()["secretGenerator"]
    assert generator == [{"name": SECRET_NAME, "envs": ["secrets.env"]}]
    assert "secrets.env" in (DEPLOY / ".gitignore").read_text().split()


def test_every_variable_named_is_a_parley_setting() -> None:
    known = _setting_names()
    named = set(_config()) | set(_secret_example())
    for workload in _workloads():
        named |= {variable["name"] for variable in _container(workload).get("env", [])}
    assert len(named) > 10
    assert sorted(named - known) == []


def test_secrets_only_come_from_the_secret() -> None:
    secret_settings = _secret_settings()
    assert {"LLM_API_KEY", "TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "REDIS_URL"} <= secret_settings
    assert sorted(set(_config()) & secret_settings) == []
    assert sorted(set(_secret_example()) - secret_settings) == []  # the Secret holds secrets only
    for workload in _workloads():
        for variable in _container(workload).get("env", []):
            if variable["name"] in secret_settings:
                assert "value" not in variable and "secretKeyRef" in variable["valueFrom"], variable["name"]


@pytest.mark.parametrize("name", ["parley-telegram", "parley-discord"])
def test_each_workload_s_environment_is_a_valid_configuration(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    workload = next(w for w in _workloads() if w["metadata"]["name"] == name)
    for variable in list(_setting_names()):  # only what the manifest gives, not this machine's environment
        monkeypatch.delenv(variable, raising=False)
    for variable, value in _environment(workload).items():
        monkeypatch.setenv(variable, value)
    settings = load_settings(Settings, _env_file=None)
    assert settings.metrics_port == int(_config()["METRICS_PORT"]) and settings.metrics_listen == "0.0.0.0"
    assert settings.database_url.startswith("postgresql+asyncpg://")  # PostgreSQL, shared: not a pod's SQLite
    assert settings.redis_url is not None
    command = _container(workload)["command"]
    platform = command[-1]
    assert command == ["parley", "run", platform]
    token = settings.telegram_bot_token if platform == "telegram" else settings.discord_bot_token
    assert token is not None


def _container_port(workload: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    ports = {p["name"]: p["containerPort"] for p in _container(workload)["ports"]}
    number: int = ports[port]
    return number


def test_probes_ask_livez_and_readyz_on_the_metrics_port() -> None:
    metrics_port = int(_config()["METRICS_PORT"])
    for workload in _workloads():
        container = _container(workload)
        probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        # Liveness must not depend on the database or the upstream: an outage would restart every pod.
        assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/livez"
        assert probes["readinessProbe"]["path"] == "/readyz"
        assert {_container_port(workload, probe["port"]) for probe in probes.values()} == {metrics_port}
        # /readyz answers within core.health's 3 s, whatever hangs.
        assert container["readinessProbe"]["timeoutSeconds"] > 3


async def test_the_probe_paths_are_served_by_the_metrics_server() -> None:
    paths = {
        _container(w)[kind]["httpGet"]["path"] for w in _workloads() for kind in ("livenessProbe", "readinessProbe")
    }

    async def healthy() -> dict[str, str]:
        return {"database": "ok", "upstream": "ok"}

    async with (
        serve_metrics(Metrics(), healthy, port=0) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        assert {path: (await client.get(path)).status_code for path in sorted(paths)} == dict.fromkeys(paths, 200)
        assert (await client.get("/no-such-probe")).status_code == 404  # so a wrong path would show


def test_the_discord_shard_set_runs_shard_n_of_replicas_on_pod_n() -> None:
    shards = _one("StatefulSet", "parley-discord")
    replicas = shards["spec"]["replicas"]
    env = {variable["name"]: variable for variable in _container(shards)["env"]}
    assert env["DISCORD_SHARD_COUNT"]["value"] == str(replicas) and replicas >= 2
    assert env["DISCORD_SHARD_IDS"]["valueFrom"] == {"fieldRef": {"fieldPath": POD_INDEX}}
    for index in range(replicas):  # each pod's settings: its own shard, of all of them
        values = {k.lower(): v for k, v in _environment(shards, shard_id=str(index)).items()}
        settings = load_settings(Settings, _env_file=None, **values)
        assert (settings.discord_shard_ids, settings.discord_shard_count) == ((index,), replicas)
    service = _one("Service", shards["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"  # the StatefulSet's governing (headless) Service


def test_telegram_workers_sit_behind_one_service_on_the_webhook_port() -> None:
    workers = _one("Deployment", "parley-telegram")
    assert workers["spec"]["replicas"] >= 2
    names = {variable["name"] for variable in _container(workers)["env"]}
    assert "TELEGRAM_WEBHOOK_SECRET" in names  # several workers: all must check the same secret
    service = _one("Service", "parley-telegram")
    assert service["spec"]["selector"] == workers["spec"]["template"]["metadata"]["labels"]
    webhook = next(p for p in service["spec"]["ports"] if p["name"] == "webhook")
    assert _container_port(workers, webhook["targetPort"]) == int(_config()["TELEGRAM_WEBHOOK_PORT"])
    assert re.match(r"https://", _config()["TELEGRAM_WEBHOOK_URL"])  # Telegram pushes to HTTPS only


def test_pods_run_non_root_read_only_with_resources_and_time_to_finish_replies() -> None:
    uid = re.search(r"useradd .*--uid (\d+) parley", (ROOT / "Dockerfile").read_text())
    assert uid is not None
    grace = float(_config()["SHUTDOWN_GRACE_SECONDS"])
    for workload in _workloads():
        spec = workload["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
        assert pod["automountServiceAccountToken"] is False
        container = _container(workload)
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"/data", "/tmp"} <= {mount["mountPath"] for mount in container["volumeMounts"]}  # writable
        assert set(container["resources"]) == {"requests", "limits"} and "memory" in container["resources"]["limits"]
        assert pod["terminationGracePeriodSeconds"] > grace  # SIGKILL only after in-flight replies finished
