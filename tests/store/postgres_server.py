"""A throwaway PostgreSQL server for the tests (the code lives in bench/postgres_server.py, shared with
the store benchmark)."""

from bench.postgres_server import MISSING, PostgresServer, find_postgres_bin, free_port, running_postgres

__all__ = ["MISSING", "PostgresServer", "find_postgres_bin", "free_port", "running_postgres"]
