# syntax=docker/dockerfile:1
# ReasonKit MCP server image (docs/deployment.md, "Docker").
#
#   docker build -t reasonkit:0.1.0 .
#   docker run --rm -p 9100:9100 --read-only --tmpfs /tmp -v reasonkit-data:/app/data \
#     -e REASONKIT_AUTH_TOKENS=<token> -e ANTHROPIC_API_KEY=<key> reasonkit:0.1.0
#
# Build stage: wheels for reasonkit and every dependency. Runtime stage: a virtual environment
# installed from those wheels only (no network, no compiler), run as uid/gid 1000. The process writes
# only /app/data (runs.db, REASONKIT_DATA_DIR) and /tmp, so `--read-only` works. Config is read from
# /app/config/default.toml when it exists. tests/deploy/test_dockerfile.py runs the two pip commands
# below exactly as written (no Docker engine is needed for that).
#
# SERVER_HOST=0.0.0.0 is set in the image, so the deployment guide's own line
#   docker run -p 9100:9100 -e REASONKIT_AUTH_TOKENS=<token> ... reasonkit serve-mcp --port 9100
# (which replaces CMD) is reachable from outside the container too; SERVER_PORT (default 9100) moves
# the default command and the health check together. A non-loopback bind without tokens stops at once
# with exit 2 and says what to set (tests/deploy/test_entrypoint.py).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reasonkit ./reasonkit
COPY protocols ./protocols
# The image serves replicas too: PostgreSQL run store and OpenTelemetry tracing are in (extras).
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels ".[postgres,tracing]"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ReasonKit" \
      org.opencontainers.image.description="Structured-reasoning ThinkTools as an MCP server" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 1000 reasonkit \
 && useradd --uid 1000 --gid 1000 --home-dir /app --no-create-home --shell /usr/sbin/nologin reasonkit \
 && mkdir -p /app/config /app/data \
 && chown 1000:1000 /app/data \
 && python -m venv /opt/reasonkit
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    /opt/reasonkit/bin/pip install --no-cache-dir --disable-pip-version-check --no-index --find-links /wheels "reasonkit[postgres,tracing]"
ENV PATH=/opt/reasonkit/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REASONKIT_DATA_DIR=/app/data \
    LOG_FORMAT=json \
    SERVER_HOST=0.0.0.0
WORKDIR /app
VOLUME ["/app/data"]
USER 1000:1000
EXPOSE 9100
# SERVER_WORKERS=N (default 1): N processes serve the one port under a supervisor (it forwards SIGTERM;
# /metrics adds them up). In Kubernetes prefer replicas; on one big host, workers. See docs/operations.md.
# /health/live never needs a token (probes) and answers on SERVER_PORT (9100 when unset); python is the
# venv's, curl is not in the slim image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SERVER_PORT') or '9100'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health/live', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["rk"]
# HTTP on SERVER_HOST:SERVER_PORT (0.0.0.0:9100). A non-loopback bind needs REASONKIT_AUTH_TOKENS (or
# [security] auth_tokens_file): see docs/deployment.md.
CMD ["serve-mcp", "--http"]
