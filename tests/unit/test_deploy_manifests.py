"""Structure of the deployment files that cannot be run here (no Docker engine, no Kubernetes cluster).

Every YAML and JSON file under ``deploy/`` parses; the Kubernetes objects have their required fields and
refer to each other consistently (service ↔ pod labels, volumes ↔ mounts, secrets ↔ keys, probes ↔
ports); the compose stack has every service the issue names and mounts files that exist; and every
``BILLWISE_*``, ``VLLM_*`` and ``KAFKA_*`` variable the manifests set is one the code reads, so a
misspelt setting cannot silently fall back to its default.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from inference.drafting import DraftingSettings
from streams import kafka_security
from streams.settings import StreamSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"

API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "StatefulSet": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
}
# The Kafka TLS and SASL variables: the names `streams.kafka_security` reads.
KAFKA_SECURITY_SOURCE = inspect.getsource(kafka_security)


def _documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _documents(path):
            doc["__file__"] = path.name
            objects.append(doc)
    return objects


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in _k8s_objects() if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _known_variable(name: str) -> bool:
    if name.startswith("BILLWISE_"):
        return name.removeprefix("BILLWISE_").lower() in StreamSettings.model_fields
    if name.startswith("VLLM_"):
        return name.lower() in DraftingSettings.model_fields
    if name == "KAFKA_BOOTSTRAP_SERVERS":
        return True
    if name.startswith("KAFKA_"):
        return f'"{name}"' in KAFKA_SECURITY_SOURCE
    return name == "POD_NAME"


# --------------------------------------------------------------------------------------------------
# Everything parses
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml", ".json")),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_deploy_file_parses(path: Path) -> None:
    if path.suffix == ".json":
        json.loads(path.read_text())
    else:
        assert _documents(path), f"{path} is empty"


# --------------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------------


def test_kubernetes_objects_have_their_required_fields() -> None:
    objects = _k8s_objects()
    assert {o["kind"] for o in objects} == set(API_VERSIONS)
    for obj in objects:
        where = f"{obj['__file__']}: {obj.get('kind')}"
        assert obj.get("apiVersion") == API_VERSIONS[obj["kind"]], where
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj["metadata"]["name"]), where
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "billwise"
        else:
            assert obj["metadata"].get("namespace") == "billwise", where
        if obj["kind"] in ("StatefulSet", "Service", "PodDisruptionBudget"):
            assert obj.get("spec"), where
        if obj["kind"] in ("ConfigMap", "Secret"):
            assert obj.get("data") or obj.get("stringData"), where


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == manifests
    generated = {g["name"]: g for g in kustomization["configMapGenerator"]}
    assert generated["billwise-policy"]["files"] == ["policy.yaml"]


def test_the_statefulset_is_consistent_with_its_services_volumes_config_and_secrets() -> None:
    sts = _one("StatefulSet", "billwise-worker")
    spec = sts["spec"]
    pod = spec["template"]
    labels = pod["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()

    # Headless governing service, also used for Prometheus's DNS SRV discovery of not-ready pods.
    headless = _one("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    for service in (o for o in _k8s_objects() if o["kind"] == "Service"):
        assert service["spec"]["selector"].items() <= labels.items(), service["metadata"]["name"]
        assert all(p["targetPort"] == "web" for p in service["spec"]["ports"])
    assert [p["name"] for p in headless["spec"]["ports"]] == ["web"]
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    config = _one("ConfigMap", "billwise-config")["data"]
    (container,) = pod["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["web"]
    assert container["args"] == ["worker", "--web-port", str(port)]
    # The web server must listen on the pod's address, or every probe and scrape fails.
    assert config["BILLWISE_WEB_BIND"] == "0.0.0.0"
    assert spec["replicas"] <= int(config["BILLWISE_PARTITIONS"]), "workers beyond the partitions idle"

    requests = container["resources"]["requests"]
    assert requests.get("cpu") and requests.get("memory")
    assert container["resources"]["limits"].get("memory")
    readiness = container["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/health" and readiness["port"] == "web"
    # Liveness on /health would kill workers that are recovering tables or waiting in a rebalance (503).
    assert (
        "httpGet" not in container["livenessProbe"]
        and container["livenessProbe"]["tcpSocket"]["port"] == "web"
    )
    assert container["startupProbe"]

    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    claims = {c["metadata"]["name"]: c for c in spec["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert set(mounts) == set(volumes) | set(claims)
    assert claims["data"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claims["data"]["spec"]["resources"]["requests"]["storage"]
    assert mounts["data"] == config["BILLWISE_DATA_DIR"], "RocksDB lives on the claim"
    assert volumes["policy"]["configMap"]["name"] == "billwise-policy"
    assert config["BILLWISE_POLICY"] == f"{mounts['policy']}/policy.yaml"
    users = volumes["users"]["secret"]
    assert config["BILLWISE_USERS_FILE"] == f"{mounts['users']}/{users['items'][0]['path']}"

    assert [e["configMapRef"]["name"] for e in container["envFrom"]] == ["billwise-config"]
    secret = _one("Secret", users["secretName"])["stringData"]
    assert users["items"][0]["key"] in secret
    for env in container["env"]:
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == users["secretName"] and ref["key"] in secret, env["name"]


def test_the_pods_run_unprivileged_with_a_read_only_root() -> None:
    pod = _one("StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_every_variable_the_kubernetes_manifests_set_is_read_by_the_code() -> None:
    sts = _one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    names = set(_one("ConfigMap", "billwise-config")["data"]) | {e["name"] for e in sts["env"]}
    names |= set(_one("Secret")["stringData"]) - {"users.json"}
    assert sorted(n for n in names if not _known_variable(n)) == []


# --------------------------------------------------------------------------------------------------
# Compose
# --------------------------------------------------------------------------------------------------


def test_the_compose_stack_has_every_service_the_deployment_needs() -> None:
    services = _compose()["services"]
    assert {"kafka", "worker", "vllm", "prometheus", "grafana"} <= set(services)

    kafka = services["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    from streams.brokers import KAFKA_VERSION

    assert tag == KAFKA_VERSION, "the same Kafka as the integration tests"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, "KRaft"
    assert not any("ZOOKEEPER" in key for key in env)

    vllm = services["vllm"]
    assert vllm["profiles"] == ["gpu"]
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert "--enable-log-requests" not in vllm["command"], "prompts carry account facts"


def test_the_compose_workers_are_built_here_scale_out_and_are_scraped() -> None:
    compose = _compose()
    worker = compose["services"]["worker"]
    build = worker["build"]
    context = (COMPOSE_DIR / build["context"]).resolve()
    assert context == ROOT
    dockerfile = context / build["dockerfile"]
    assert dockerfile.exists() and Path(f"{dockerfile}.dockerignore").exists()
    copied = re.findall(r"^COPY (?!--from)(\S+(?: \S+)*) \S+$", dockerfile.read_text(), re.MULTILINE)
    sources = [source for line in copied for source in line.split()]
    assert {"pyproject.toml", "streams", "rules", "models", "inference", "schemas"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
        assert f"!{source}" in dockerfile.with_name("Dockerfile.dockerignore").read_text().split()
    assert "${BILLWISE_WORKERS" in str(worker["deploy"]["replicas"])
    port = int(worker["command"][worker["command"].index("--web-port") + 1])
    env = worker["environment"]
    assert env["BILLWISE_WEB_BIND"] == "0.0.0.0"
    assert env["BILLWISE_USERS_FILE"] == "/run/secrets/billwise_users"

    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "billwise"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and discovery["port"] == port
    for name in ("vllm", "kafka-exporter"):
        (target,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == name]
        host = target["static_configs"][0]["targets"][0].split(":")[0]
        assert host in compose["services"], host


def test_every_compose_variable_is_read_by_the_code() -> None:
    services = _compose()["services"]
    names = set(services["worker"]["environment"]) | set(services["init-topics"]["environment"])
    assert sorted(n for n in names if not _known_variable(n)) == []


def test_compose_mounts_files_that_exist_and_grafana_finds_the_dashboard() -> None:
    services = _compose()["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name} mounts {source}, which does not exist"
    assert (DEPLOY / "prometheus" / "prometheus.yml").exists()

    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/billwise.yml").read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    targets = [v.split(":")[1] for v in services["grafana"]["volumes"]]
    assert f"{dashboards_dir}/billwise-dashboard.json" in targets

    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    dashboard = json.loads((DEPLOY / "grafana" / "billwise-dashboard.json").read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert variable["current"]["value"] == source["uid"]


def test_the_users_file_example_has_the_shape_the_worker_reads() -> None:
    users = json.loads((COMPOSE_DIR / "users.example.json").read_text())["users"]
    assert users and all({"user_id", "role", "token_sha256"} <= set(u) for u in users)
    assert "users.json" in (COMPOSE_DIR / ".gitignore").read_text().split()
