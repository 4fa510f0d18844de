"""`rk providers check`: one tiny probe per configured provider (reasonkit/providers/check.py)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from reasonkit.cli.common import EXIT_FAILED, EXIT_OK, fail, load_settings
from reasonkit.config.show import mask_url, mask_urls


@click.group()
def providers() -> None:
    """Inspect the configured LLM providers."""


def _row(result: Any) -> str:
    status = "ok  " if result.ok else "FAIL"
    latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "-"
    model = "found" if result.model_found else "not listed" if result.model_found is False else "-"
    where = f" at {mask_url(result.base_url)}" if result.base_url else ""
    line = (
        f"{status} {result.provider:<12} model {result.model or '-'} ({model}){where}\n"
        f"     reachable: {'yes' if result.reachable else 'no'}  output mode: {result.output_mode or '-'}  "
        f"latency: {latency}"
    )
    if result.error:
        line += f"\n     error ({result.error_kind or 'other'}): {result.error}"
    return line


@providers.command("check")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--timeout", type=click.FloatRange(1, 600), default=30.0, show_default=True, help="Seconds per provider."
)
@click.pass_context
def providers_check(ctx: click.Context, fmt: str, timeout: float) -> None:
    """Probe every configured provider: reachable, model found, which structured-output mode works
    (negotiated as a run would), latency. One tiny completion each. Exit 1 if any probe failed."""
    settings = load_settings(ctx)
    import anyio

    from reasonkit.errors import NoProviderConfigured
    from reasonkit.providers.check import check_providers

    try:
        results = anyio.run(check_providers, settings, timeout)
    except NoProviderConfigured as exc:
        fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps(mask_urls([r.as_dict() for r in results]), indent=2))
    else:
        for result in results:
            click.echo(_row(result))
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_FAILED)
