"""`rk db migrate`: bring the run database's schema up to this version of ReasonKit.

The server migrates at start-up too (one replica migrates, the others wait on an advisory lock); this
command lets a deployment do it first, e.g. from a Kubernetes Job or before a rolling update.
"""

from __future__ import annotations

import click

from reasonkit.cli.common import EXIT_FAILED, fail, load_settings


@click.group("db")
def db() -> None:
    """The run database (`[storage] url` / REASONKIT_DATABASE_URL, else the SQLite file)."""


@db.command("migrate")
@click.option("--check", is_flag=True, help="Only report; exit 1 when migrations are pending.")
@click.pass_context
def migrate(ctx: click.Context, check: bool) -> None:
    """Apply pending schema migrations (safe to run while replicas are up)."""
    from reasonkit.errors import StoreError
    from reasonkit.store.factory import database_url, open_store, store_location

    settings = load_settings(ctx)
    try:
        url = database_url(settings)
        where = store_location(settings)
        if url is None:  # SQLite migrates whenever it is opened
            store = open_store(settings)
            store.close()
            click.echo(f"{where}: SQLite run store, schema current")
            return
        from reasonkit.store.postgres import PostgresRunStore
        from reasonkit.store.postgres_schema import SCHEMA_VERSION

        with PostgresRunStore(url, lease_secs=settings.storage.lease_secs, migrate=False) as store:
            before = store.schema_version
            if check:
                if before < SCHEMA_VERSION:
                    fail(f"{where}: schema {before}, migrations to {SCHEMA_VERSION} pending", EXIT_FAILED)
                click.echo(f"{where}: schema {before}, current")
                return
            after = store.migrate()
    except StoreError as exc:
        fail(str(exc), EXIT_FAILED)
    except ImportError as exc:
        fail(f"the PostgreSQL driver is not installed ({exc.name}): pip install 'reasonkit[postgres]'")
    if before == after:
        click.echo(f"{where}: schema {after}, nothing to migrate")
    else:
        click.echo(f"{where}: migrated schema {before} -> {after}")
