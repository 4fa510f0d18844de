"""Observability: the Prometheus metrics registry, logging setup and health checks."""
