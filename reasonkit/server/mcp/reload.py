"""SIGHUP: re-read the settings, the token file and the protocol directories, and switch to them
without dropping connections. Calls in flight finish with what they started with; the next ones use
the new set. A config that cannot be loaded (or any other failure while loading) leaves everything
as it was; a protocol file that is now broken is reported and its previous version stays."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from loguru import logger
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged

from reasonkit.config import Settings
from reasonkit.errors import ConfigError, SecurityError
from reasonkit.protocol.loader import Registry, load_registry
from reasonkit.server.mcp.core import ServerCore
from reasonkit.server.mcp.schemas import exposed_tools

if TYPE_CHECKING:
    from reasonkit.server.http.security import SecurityPolicy as Policy

# Settings that a reload cannot change in a running process (they take effect at the next start).
RESTART_ONLY = (
    "server.host",
    "server.port",
    "server.workers",
    "server.metrics_port",
    "server.stateless_http",
    "storage.data_dir",
    "storage.save_runs",
)


def _resolved(path: str) -> str:
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError):
        return path


class Reloader:
    def __init__(self, core: ServerCore):
        self.core = core
        self._lock = anyio.Lock()

    def _load(self) -> tuple[Settings, Registry, Any]:
        """(new settings, new registry, new security policy); raises on a bad config or token file."""
        from reasonkit.observability.logging import add_secrets
        from reasonkit.server.http.security import SecurityPolicy, secret_values

        core = self.core
        settings = core.settings_loader() if core.settings_loader is not None else core.settings
        add_secrets(secret_values(settings, []))  # new API keys are redacted from the logs too
        registry = load_registry([Path(d) for d in settings.protocols.dirs])
        exposed_tools(settings.server.tools, registry)  # ConfigError: a `[server] tools` name is no tool
        policy = SecurityPolicy.from_settings(settings, core.bind_host) if core.security is not None else None
        if policy is not None:
            policy = self._kept_guards(policy, settings)
        return settings, registry, policy

    def _kept_guards(self, policy: Policy, settings: Settings) -> Policy:
        """A reload never leaves fewer auth guards than a start would: a token source that is empty
        now (a file emptied by mistake, a rotation caught half-way) keeps the previous tokens, since
        switching authentication off is never what a reload means; and the start's bind rules apply
        (SecurityError: a non-loopback bind without tokens, so the reload fails as a whole)."""
        previous = self.core.security
        if previous is not None and previous.tokens and not policy.tokens:  # OAuth on or not
            logger.error(
                "the reloaded token sources hold no bearer token; the previous {} token(s) stay in effect "
                "(authentication is switched off only by a restart)",
                len(previous.tokens),
            )
            policy = dataclasses.replace(policy, tokens=previous.tokens, names=previous.names)
        if previous is not None and previous.oauth is not None:
            policy = self._kept_oauth(previous, policy)
        policy.check_bind(self.core.bind_host, settings.server.port, settings)
        return policy

    @staticmethod
    def _kept_oauth(previous: Policy, policy: Policy) -> Policy:
        """OAuth stays on across a reload: unchanged `[server.oauth]` keeps the verifier (and the
        issuer's keys it fetched); settings without it keep the previous one, as for tokens."""
        assert previous.oauth is not None
        if policy.oauth is None:
            logger.error(
                "the reloaded settings have no [server.oauth]; OAuth access tokens of {} stay accepted "
                "(authentication is switched off only by a restart)",
                previous.oauth.issuer,
            )
            return dataclasses.replace(policy, oauth=previous.oauth)
        if policy.oauth.settings == previous.oauth.settings:
            return dataclasses.replace(policy, oauth=previous.oauth)
        return policy

    async def reload(self) -> bool:
        """Apply a reload; True when applied."""
        core = self.core
        async with self._lock:
            logger.info("reloading settings and protocols")
            try:
                settings, registry, policy = await anyio.to_thread.run_sync(self._load)
                kept = self._keep_previous(registry)
            except Exception as exc:  # noqa: BLE001 - any failure leaves the running server as it was
                core.metrics.reloads.labels(outcome="failed").inc()
                # Our own errors say what is wrong; anything else gets its type (and the traceback in
                # the debug log) so the operator can tell a bug from a bad file.
                known = isinstance(exc, (ConfigError, SecurityError, OSError))
                reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
                logger.error("reload failed; the previous settings and protocols stay in effect: {}", reason)
                if not known:
                    logger.opt(exception=exc).debug("reload failure details")
                return False
            for problem in registry.problems:
                logger.warning("skipped invalid protocol data: {}", problem)
            old = core.settings
            self._warn_restart_only(old, settings)
            if settings.logging != old.logging:
                from reasonkit.observability.logging import setup_logging

                setup_logging(settings)
            provider_changed = (settings.llm, settings.features, settings.database) != (
                old.llm,
                old.features,
                old.database,
            )
            before_tools = [t.model_dump() for t in core.tools]
            before_protocols = set(core.protocols)
            core.apply(settings, registry)
            if policy is not None:
                core.security = policy
            if provider_changed and core.runtime is not None:
                core.runtime.retire_provider()
            core.metrics.reloads.labels(outcome="partial" if registry.problems else "ok").inc()
            added = sorted(set(core.protocols) - before_protocols)
            removed = sorted(before_protocols - set(core.protocols))
            logger.info(
                "reloaded: {} tools{}{}{}{}",
                len(core.tools),
                f"; added {', '.join(added)}" if added else "",
                f"; removed {', '.join(removed)}" if removed else "",
                f"; kept the previous version of {', '.join(kept)}" if kept else "",
                f"; {len(registry.problems)} problem(s) in protocol files" if registry.problems else "",
            )
            if [t.model_dump() for t in core.tools] != before_tools:
                await self.notify_changed()
            return True

    @staticmethod
    def _warn_restart_only(old: Settings, new: Settings) -> None:
        for key in RESTART_ONLY:
            section, name = key.split(".")
            before, after = getattr(getattr(old, section), name), getattr(getattr(new, section), name)
            if before != after:
                logger.warning(
                    "{} changed ({!r} -> {!r}): it takes effect after a restart", key, before, after
                )

    def _keep_previous(self, registry: Registry) -> list[str]:
        """Protocols and profiles whose file is broken now keep their previously loaded version."""
        bad = {_resolved(p.file) for p in registry.problems}
        previous = self.core.registry
        kept = []
        for pid, proto in previous.protocols.items():
            if proto.source and _resolved(proto.source) in bad:
                registry.protocols[pid] = proto
                kept.append(pid)
        for pid, prof in previous.profiles.items():
            if prof.source and _resolved(prof.source) in bad and pid not in registry.profiles:
                registry.profiles[pid] = prof
                kept.append(f"profile {pid}")
        return kept

    async def notify_changed(self) -> None:
        """Tell connected clients the tools, prompts and resources changed: 2026-07-28 clients through
        their `subscriptions/listen` streams, handshake-era sessions (stdio, stateful HTTP) with
        `notifications/*/list_changed`. Stateless handshake-era HTTP has no channel for it."""
        core = self.core
        for event in (ToolsListChanged(), PromptsListChanged(), ResourcesListChanged()):
            await core.bus.publish(event)
        for conn in list(core.connections):
            try:
                with anyio.move_on_after(2):
                    await conn.send_tool_list_changed()
                    await conn.send_prompt_list_changed()
                    await conn.send_resource_list_changed()
            except Exception as exc:  # noqa: BLE001 - a connection that went away
                logger.debug("list_changed notification not delivered: {}", exc)
                core.connections.discard(conn)
