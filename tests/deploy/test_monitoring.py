"""deploy/monitoring: promtool on the Prometheus configs and rules, the metric names of the alerts
and the Grafana dashboard against a live `rk serve-mcp` /metrics (checked by `promtool check
metrics`), Grafana provisioning, Loki and Alloy wiring."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, require_tool
from tests.deploy.helpers import mcp_tool_call, wait_ready
from tests.server.procs import free_port, rk_command

MON = DEPLOY / "monitoring"
ALERTS = MON / "alerts.yml"
DASHBOARD = MON / "grafana" / "dashboards" / "reasonkit.json"
METRIC_RE = re.compile(r"\breasonkit_[a-z0-9_]+\b")
# Series Prometheus makes itself (not exposed by ReasonKit).
PROMETHEUS_SERIES = {"up"}


def _promtool() -> str:
    return require_tool("promtool", "Debian package prometheus")


def _with_rules_path(config: Path, tmp_path: Path) -> Path:
    """The config with its rule_files pointing at the repository's alerts.yml (in the containers
    they are mounted at /etc/prometheus/alerts.yml), so promtool checks the rules it names too."""
    data = yaml.safe_load(config.read_text())
    assert data["rule_files"] == ["/etc/prometheus/alerts.yml"]
    data["rule_files"] = [str(ALERTS)]
    out = tmp_path / config.name
    out.write_text(yaml.safe_dump(data))
    return out


def test_promtool_check_rules():
    out = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_check_config_static(tmp_path):
    cfg = _with_rules_path(MON / "prometheus.yml", tmp_path)
    out = subprocess.run([_promtool(), "check", "config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_promtool_check_config_kubernetes(tmp_path):
    """Debian's promtool is built without Kubernetes service discovery ("field kubernetes_sd_configs
    not found"), so the pod-discovery block is checked here field by field and the rest of the file
    (relabel rules, rule files, globals) by promtool with the discovery swapped for a static target."""
    data = yaml.safe_load((MON / "prometheus-kubernetes.yml").read_text())
    (job,) = [j for j in data["scrape_configs"] if j["job_name"] == "reasonkit"]
    (sd,) = job.pop("kubernetes_sd_configs")
    assert sd["role"] == "pod"
    assert set(sd) <= {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata"}
    assert sd["namespaces"]["names"] == ["reasonkit"]
    job["static_configs"] = [{"targets": ["10.0.0.1:9100"]}]
    for rule in job["relabel_configs"]:
        re.compile(rule.get("regex", "(.*)"))
    # the annotations it keys on are the ones the StatefulSet sets
    sts = yaml.safe_load((DEPLOY / "kubernetes" / "base" / "statefulset.yaml").read_text())
    ann = sts["spec"]["template"]["metadata"]["annotations"]
    sources = {s for r in job["relabel_configs"] for s in r.get("source_labels", [])}
    for key in ann:
        meta = "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)
        assert meta in sources, key
    data["rule_files"] = [str(ALERTS)]
    cfg = tmp_path / "prometheus-kubernetes.yml"
    cfg.write_text(yaml.safe_dump(data))
    out = subprocess.run([_promtool(), "check", "config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _alert_exprs() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            if panel.get("datasource", {}).get("type") == "prometheus":
                exprs.append(t["expr"])
    return exprs


def test_alerts_cover_the_guide():
    names = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    assert {"ReasonKitHighErrorRate", "ReasonKitHighLatency", "ReasonKitLowConfidence"} <= names


@pytest.fixture(scope="module")
def live_metrics(tmp_path_factory) -> str:
    """/metrics of a real `rk serve-mcp --port N --metrics-port M` after one tool call against the
    fake LLM (scraped from the side port, as Prometheus does in the compose and Kubernetes setups)."""
    from tests.fakes.fake_llm import FakeLLM, schema_filler

    tmp = tmp_path_factory.mktemp("live")
    (tmp / "home").mkdir()
    token = "deploy-test-token-0123456789"
    with FakeLLM() as fake:
        fake.default = schema_filler
        port, metrics_port = free_port(), free_port()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp / "home"),
            "REASONKIT_DATA_DIR": str(tmp / "data"),
            "OPENAI_BASE_URL": fake.openai_base_url,
            "LLM_DEFAULT_PROVIDER": "openai",
            "REASONKIT_AUTH_TOKENS": token,
            "LOG_FORMAT": "json",
        }
        log = tmp / "server.log"
        with log.open("w+") as err:
            proc = subprocess.Popen(
                [*rk_command(), "serve-mcp", "--port", str(port), "--metrics-port", str(metrics_port)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                wait_ready(base, proc, log.read_text)
                result = mcp_tool_call(
                    base,
                    token,
                    "laserlogic",
                    {"argument": "All swans are white because every swan I saw was white."},
                )
                assert not result.get("isError"), result
                resp = httpx.get(
                    f"http://127.0.0.1:{metrics_port}/metrics",
                    headers={"authorization": f"Bearer {token}"},
                    timeout=10,
                )
                assert resp.status_code == 200, resp.text
                body = resp.text
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    return body


def test_promtool_check_metrics_on_live_output(live_metrics):
    out = subprocess.run(
        [_promtool(), "check", "metrics"], input=live_metrics, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _families(exposition: str) -> dict[str, str]:
    """metric family -> type, from the # TYPE lines of a text exposition."""
    fams = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            fams[name] = kind
    return fams


def _exists(name: str, fams: dict[str, str]) -> bool:
    if fams.get(name) in ("gauge", "counter") and not name.endswith(("_bucket", "_sum", "_count")):
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and fams.get(name.removesuffix(suffix)) == "histogram":
            return True
    # prometheus_client announces counters without the _total suffix in # TYPE
    return name.endswith("_total") and fams.get(name.removesuffix("_total")) == "counter"


@pytest.mark.parametrize("source", ["alerts.yml", "grafana dashboard"])
def test_every_metric_name_exists_in_live_output(live_metrics, source):
    exprs = _alert_exprs() if source == "alerts.yml" else _dashboard_exprs()
    assert exprs
    fams = _families(live_metrics)
    names = set()
    for expr in exprs:
        names.update(METRIC_RE.findall(expr))
        # every metric-like identifier is ours or Prometheus' own (no typo'd foreign names)
        for ident in re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?=\{|\[)", expr):
            assert ident.startswith("reasonkit_") or ident in PROMETHEUS_SERIES, (ident, expr)
    assert names
    missing = sorted(n for n in names if not _exists(n, fams))
    assert not missing, f"{source} uses metrics the server does not expose: {missing}"
    # histogram functions are applied to histogram buckets only
    for expr in exprs:
        for name in re.findall(r"histogram_quantile\([^,]+,\s*sum by \([^)]*\) \(rate\((\w+)", expr):
            assert name.endswith("_bucket") and fams.get(name.removesuffix("_bucket")) == "histogram", expr


def test_live_output_has_the_core_series(live_metrics):
    """The tool call really was counted (not just declared)."""
    assert (
        'reasonkit_requests_total{method="laserlogic",profile="laserlogic",status="complete"} 1.0'
        in live_metrics
    )
    assert 'reasonkit_request_duration_seconds_count{method="laserlogic"} 1.0' in live_metrics
    assert 'reasonkit_confidence_score_count{profile="laserlogic"} 1.0' in live_metrics
    assert re.search(r'reasonkit_llm_tokens_total\{provider="openai",type="input"\} [1-9]', live_metrics)


def test_dashboard_panels():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "reasonkit"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus" and variables["logs"]["query"] == "loki"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    joined = "\n".join(_dashboard_exprs())
    # request rate, latency quantiles, errors by type, tokens, cost, confidence, per-tool and
    # per-step durations, cache hit ratio, breaker state
    for needle in (
        "rate(reasonkit_requests_total",
        "histogram_quantile(0.50",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        "reasonkit_provider_errors_total",
        "reasonkit_llm_tokens_total",
        "reasonkit_cost_usd_total",
        "reasonkit_confidence_score_bucket",
        "sum by (method, le)",
        "reasonkit_step_duration_seconds_bucket",
        "reasonkit_cache_hits_total",
        "reasonkit_circuit_breaker_state",
    ):
        assert needle in joined, needle
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        ds = panel["datasource"]["uid"]
        assert ds in ("${datasource}", "${logs}"), panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == ds


def test_grafana_provisioning_matches_compose():
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.production.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    prov = yaml.safe_load((MON / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    path = prov["providers"][0]["options"]["path"]
    assert path in mounts and (DEPLOY / "compose" / mounts[path]).resolve() == DASHBOARD.parent
    assert (
        DEPLOY / "compose" / mounts["/etc/grafana/provisioning"]
    ).resolve() == MON / "grafana" / "provisioning"
    sources = {
        d["type"]: d
        for d in yaml.safe_load((MON / "grafana/provisioning/datasources/datasources.yml").read_text())[
            "datasources"
        ]
    }
    loki_port = yaml.safe_load((MON / "loki" / "loki.yml").read_text())["server"]["http_listen_port"]
    assert sources["prometheus"]["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    assert sources["loki"]["url"] == f"http://loki:{loki_port}" and "loki" in compose["services"]


def test_loki_and_alloy_wiring():
    loki = yaml.safe_load((MON / "loki" / "loki.yml").read_text())
    assert loki["auth_enabled"] is False
    assert loki["common"]["path_prefix"] == "/loki"
    assert (
        loki["schema_config"]["configs"][0]["store"] == "tsdb"
        and loki["schema_config"]["configs"][0]["schema"] == "v13"
    )
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.production.yml").read_text())
    assert "loki-data:/loki" in compose["services"]["loki"]["volumes"]
    alloy = (MON / "alloy" / "config.alloy").read_text()
    port = loki["server"]["http_listen_port"]
    assert f'url = "http://loki:{port}/loki/api/v1/push"' in alloy
    # the label the dashboard's log panel and the Alloy pipeline select on
    assert 'selector = "{service=\\"reasonkit\\"}"' in alloy
    assert '{service="reasonkit"}' in DASHBOARD.read_text().replace('\\"', '"')
    # braces balance (Alloy's syntax is not checked by a tool here)
    assert alloy.count("{") == alloy.count("}")
