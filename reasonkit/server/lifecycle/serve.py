"""Run the server: stdio or streamable HTTP, an optional side port for metrics and health, and a
graceful shutdown.

SIGTERM / SIGINT (drain): readiness turns 503 at once and new tool calls are refused (HTTP 503 with
`Retry-After`, or the tool error "busy, retry in N s"); in-flight tool runs get
`[server] shutdown_grace_secs` to finish. Runs still going then end as their deadline would: each
returns what it finished to its caller (and is stored `incomplete`, with its partial confidence);
then the server stops and the process exits 0. A second signal stops at once.

`[server] workers` > 1 (HTTP): this process binds the port and supervises that many worker processes
serving it (reasonkit/server/lifecycle/workers.py).

SIGHUP: `ReasonKitServer.reload()` re-reads the settings, the token file and the protocol
directories and switches to them; connections and calls in flight are not touched.

stdio: nothing but MCP messages is ever written to stdout. Logs go to stderr; while serving, the
SDK's `stdio_server` also points fd 1 at stderr so stray prints from any library cannot corrupt
the stream.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
from loguru import logger

from reasonkit.errors import ServeError
from reasonkit.server.mcp.app import ReasonKitServer

# After a stop in stdio mode, the thread reading stdin may stay blocked until the client writes or
# closes the pipe: leave once the runs are saved, at most this long after the stop.
STDIO_EXIT_WATCHDOG_SECS = 10.0


def bind(host: str, port: int) -> socket.socket:
    """Listen on host:port before anything else starts, so a taken port is a clear error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = " (another process uses it: choose another port)" if exc.errno in (errno.EADDRINUSE,) else ""
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(False)
    return sock


# After the grace period, the runs told to stop have this long to return their partial results.
PARTIAL_RESULT_SECS = 5.0


def _uvicorn_server(app: Any, host: str, port: int, settings: Any = None) -> Any:
    import uvicorn

    from reasonkit.server.http.connections import uvicorn_options

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # ReasonKit handles SIGTERM/SIGINT itself (drain first, then exit 0); uvicorn's own
            # handlers would stop at once and re-raise the signal after shutdown (exit 143).
            yield

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=3,
        **({"timeout_keep_alive": 5} if settings is None else uvicorn_options(settings)),
    )
    return _Server(config)


RELOAD_SIGNALS = (signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()


async def _watch_signals(core: ReasonKitServer, stop: Callable[[bool], None]) -> None:
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, *RELOAD_SIGNALS) as signals:
            async for sig in signals:
                name = signal.Signals(sig).name
                if sig in RELOAD_SIGNALS:
                    if core.status.draining:
                        logger.info("received {} while shutting down: ignored", name)
                    else:
                        logger.info("received {}: reloading settings and protocols", name)
                        tg.start_soon(core.reload)
                    continue
                if core.status.draining:
                    logger.warning("received {} again: stopping now", name)
                    stop(True)
                    return
                core.status.start_draining()
                grace = core.settings.server.shutdown_grace_secs
                logger.info(
                    "received {}: readiness is now 503 and new calls are refused; "
                    "{} run(s) in flight get up to {:g}s to finish",
                    name,
                    core.status.inflight,
                    grace,
                )
                # end subscriptions/listen streams gracefully: they would hold the shutdown
                core.listen.close()

                async def drain(grace: float = grace) -> None:
                    idle = await core.status.wait_idle(grace)
                    if not idle:
                        told = core.status.expire_runs(
                            f"the server is shutting down (grace period of {grace:g}s ended)"
                        )
                        logger.warning(
                            "{} run(s) still going after {:g}s: ending them with their partial results",
                            told,
                            grace,
                        )
                        if not await core.status.wait_idle(PARTIAL_RESULT_SECS):
                            logger.warning(
                                "{} run(s) did not stop: cancelling them (saved as cancelled)",
                                core.status.inflight,
                            )
                    stop(False)

                tg.start_soon(drain)


def _side_server(core: ReasonKitServer, main_port: int | None) -> tuple[Any, socket.socket] | None:
    s = core.settings
    port = s.server.metrics_port
    if not port or not s.features.metrics or port == main_port:
        return None
    from reasonkit.server.http.apps import build_side_app
    from reasonkit.server.lifecycle import workers

    sock = workers.inherited_socket(workers.SIDE_FD_ENV) or bind(s.server.host, port)
    logger.info("metrics and health on http://{}:{}/metrics", s.server.host, port)
    return _uvicorn_server(build_side_app(core), s.server.host, port, s), sock


def settle_heap() -> None:
    """Move everything start-up made (settings, protocols, schemas, the SDK's and pydantic's
    models: most of the heap) out of the garbage collector's sight: a full collection then walks
    only what requests create, instead of the whole start-up heap again and again (the largest
    single item of a cached call's CPU: issue 26)."""
    gc.collect()
    gc.freeze()


def serve_http(core: ReasonKitServer, host: str, port: int) -> None:
    from reasonkit.server.http.apps import build_http_app
    from reasonkit.server.lifecycle import workers

    inherited = workers.inherited_socket(workers.MAIN_FD_ENV)
    if inherited is None and core.settings.server.workers > 1:
        main_sock = bind(host, port)
        side_sock = None
        s = core.settings
        if s.server.metrics_port and s.features.metrics and s.server.metrics_port != port:
            side_sock = bind(s.server.host, s.server.metrics_port)
        raise SystemExit(workers.supervise(s.server.workers, main_sock, side_sock, host, port))
    if inherited is not None:
        workers.die_with_parent()
    main_sock = inherited or bind(host, port)
    side_pair = _side_server(core, port)
    main = _uvicorn_server(build_http_app(core, host), host, port, core.settings)
    side = side_pair[0] if side_pair else None
    core.metrics.workers.set(1)  # each worker adds 1 (multiprocess mode adds them up)
    settle_heap()

    def stop(force: bool) -> None:
        for srv in (main, side):
            if srv is not None:
                srv.should_exit = True
                if force:
                    srv.force_exit = True

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, core, stop)
            side_done = _start_side(tg, side_pair)
            mode = "stateless" if core.settings.server.stateless_http else "stateful"
            logger.info(
                "ReasonKit MCP server on http://{}:{}/mcp ({} streamable HTTP; {} tools)",
                host,
                port,
                mode,
                len(core.tools),
            )
            await main.serve(sockets=[main_sock])
            await _stop_side(side, side_done)
            tg.cancel_scope.cancel()

    anyio.run(run)


def serve_stdio(core: ReasonKitServer) -> None:
    from mcp.server.stdio import stdio_server

    side_pair = _side_server(core, None)
    side = side_pair[0] if side_pair else None

    async def run() -> None:
        async with anyio.create_task_group() as tg:

            def stop(force: bool) -> None:
                if side is not None:
                    side.should_exit = True
                    side.force_exit = force
                _start_watchdog(core, STDIO_EXIT_WATCHDOG_SECS if not force else 1.0)
                tg.cancel_scope.cancel()

            tg.start_soon(_watch_signals, core, stop)
            side_done = _start_side(tg, side_pair)
            logger.info("ReasonKit MCP server on stdio ({} tools)", len(core.tools))
            async with stdio_server() as (read, write):
                core.status.ready = True
                try:
                    await core.server.run(read, write, core.server.create_initialization_options())
                finally:
                    core.status.ready = False
            logger.info("stdin closed: stopping")
            await _stop_side(side, side_done)
            tg.cancel_scope.cancel()

    anyio.run(run)


def _start_side(tg: Any, side: tuple[Any, socket.socket] | None) -> anyio.Event:
    done = anyio.Event()
    if side is None:
        done.set()
        return done
    server, sock = side

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            done.set()

    tg.start_soon(run)
    return done


async def _stop_side(side: Any | None, done: anyio.Event) -> None:
    if side is not None:
        side.should_exit = True
        with anyio.move_on_after(5):
            await done.wait()


def _start_watchdog(core: ReasonKitServer, max_secs: float) -> None:
    """The SDK reads stdin in a worker thread that a cancellation cannot interrupt, so after a
    signal the process could wait for the client to write or close the pipe. Once every run has
    been cancelled and saved (or after `max_secs`), leave."""

    def watch() -> None:
        deadline = time.monotonic() + max_secs
        while time.monotonic() < deadline and (core.status.inflight > 0 or core.live):
            time.sleep(0.05)
        time.sleep(0.3)  # let the normal shutdown finish if it can
        logger.info("stopped (stdin still open)")
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(0)

    threading.Thread(target=watch, name="reasonkit-exit-watchdog", daemon=True).start()
