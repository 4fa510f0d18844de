"""Every environment variable named in the docs and the deployment files is one the code reads, and
every variable the code reads is documented."""

from __future__ import annotations

import re
from pathlib import Path

from reasonkit.config import ENV_VARS, OTHER_ENV_VARS
from tests.deploy.conftest import DEPLOY, REPO

CODE_VARS = set(ENV_VARS) | set(OTHER_ENV_VARS)
NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")

# Names that look like environment variables but are not ReasonKit's. Keep this list short and say
# why each is here.
NOT_OURS = {
    # read by other programs
    "MCP_TIMEOUT": "Claude Code's server start-up timeout (docs/mcp-clients.md)",
    "DEBIAN_FRONTEND": "apt-get (deploy/lxc/install.sh)",
    "BASH_SOURCE": "a bash variable (deploy/lxc/install.sh)",
    "PYTHON_IMAGE": "a build argument of the Dockerfile (docker build --build-arg)",
    "GRAFANA_ADMIN_PASSWORD": (
        "compose interpolation for the Grafana container (docker-compose.production.yml, .env.example)"
    ),
    "POSTGRES_PASSWORD": "compose interpolation for the postgres container (docker-compose.production.yml)",
    "POSTGRES_USER": "read by the postgres image (docker-compose.production.yml)",
    "POSTGRES_DB": "read by the postgres image (docker-compose.production.yml)",
    "OTEL_SERVICE_NAME": "read by the OpenTelemetry SDK itself (docs/operations.md: tracing)",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "read by the OpenTelemetry OTLP exporter itself",
    "OTEL_SDK_DISABLED": "read by the OpenTelemetry SDK itself (turns tracing off)",
    "PROMETHEUS_MULTIPROC_DIR": "set by `rk serve-mcp` for its workers, read by prometheus-client",
    # not variables at all
    "AF_INET": "systemd RestrictAddressFamilies= value",
    "AF_INET6": "systemd RestrictAddressFamilies= value",
    "AF_UNIX": "systemd RestrictAddressFamilies= value",
    "RUN_ID": "a placeholder in command synopses (docs/runs.md)",
    "CONFIDENCE_WORDS": "a constant of reasonkit/engine/parsing.py named in docs/confidence.md",
    "NO_CONFIDENCE": "a constant of reasonkit/engine/confidence.py named in docs/confidence.md",
    "Q4_1": "a GGUF quantisation name (docs/local-models.md)",
    "Q4_K_M": "a GGUF quantisation name (docs/local-models.md: the Gemma 3 check)",
    # read by llama-cpp-python's source build (docs/local-models.md: GPU offload)
    "CMAKE_ARGS": "pip's build of llama-cpp-python reads it (docs/local-models.md)",
    "DGGML_CUDA": "part of a CMAKE_ARGS value (-DGGML_CUDA=on), not a variable",
    "DGGML_METAL": "part of a CMAKE_ARGS value (-DGGML_METAL=on), not a variable",
    **{
        f"DGGML_{flag}": "part of the portable CMAKE_ARGS value (docs/local-models.md), not a variable"
        for flag in ("NATIVE", "AVX", "AVX2", "FMA", "F16C", "BMI2")
    },
    "LEFT_OUT": "a table of tests/presentation/test_surfaces.py named in docs/architecture.md",
    "TOOL_OR_PROFILE": "a placeholder in command synopses (docs/runs.md)",
}
# Grafana's container reads GF_<SECTION>_<KEY>; allowed in the compose files only.
GRAFANA = re.compile(r"^GF_[A-Z0-9_]+$")


def documents() -> list[Path]:
    files = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md", REPO / "Dockerfile"]
    files += sorted(p for p in DEPLOY.rglob("*") if p.is_file())
    return files


def test_every_named_variable_is_read_by_the_code():
    unknown: dict[str, list[str]] = {}
    for path in documents():
        rel = path.relative_to(REPO).as_posix()
        for name in set(NAME.findall(path.read_text(errors="replace"))):
            if name in CODE_VARS or name in NOT_OURS:
                continue
            if GRAFANA.match(name) and rel.startswith("deploy/compose/"):
                continue
            unknown.setdefault(name, []).append(rel)
    assert not unknown, (
        "environment variables the code does not read "
        f"(add them to the code or to NOT_OURS with a reason): {unknown}"
    )


def test_every_variable_the_code_reads_is_documented():
    docs = (REPO / "docs" / "configuration.md").read_text() + (REPO / "docs" / "deployment.md").read_text()
    env_example = (DEPLOY / "compose" / ".env.example").read_text()
    for name in sorted(CODE_VARS):
        assert re.search(rf"\b{name}\b", docs), (
            f"{name} is read by the code but not in docs/configuration.md or docs/deployment.md"
        )
        assert re.search(rf"^(# )?{name}=", env_example, re.M), (
            f"{name} is missing from deploy/compose/.env.example"
        )


def test_allow_list_entries_are_used():
    text = "\n".join(p.read_text(errors="replace") for p in documents())
    for name in NOT_OURS:
        assert re.search(rf"\b{name}\b", text), f"{name} is in NOT_OURS but named nowhere: remove it"
