"""How a run is shown, in one place for every surface.

    reasonkit.presentation.view  `RunView`: a run built once from a `RunResult` or a stored trace
    reasonkit.presentation.fmt   confidences, costs, tokens, times, breakdown deltas as shown

The surfaces that read them: reasonkit/render.py (text, markdown), reasonkit/server/mcp/rendering.py
(MCP tool results), reasonkit/viewer/ (the HTML report, `rk runs show --full`) and
reasonkit/cli/run_commands.py (`rk runs list`, `rk runs show`). Nothing here imports the engine, so
the server can build a view before its first run loads it.
"""

from __future__ import annotations

from reasonkit.presentation.view import (
    CallView,
    EntryView,
    FactorView,
    RunView,
    StepView,
    TokensView,
    run_view,
)

__all__ = ["CallView", "EntryView", "FactorView", "RunView", "StepView", "TokensView", "run_view"]
