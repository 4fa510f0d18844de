"""See a run: its whole reasoning as readable text (`rk runs show --full`) and as one self-contained
HTML report (`rk runs view`, the served `/runs/{id}` pages).

    reasonkit.viewer.fields    a step's structured output in reading order (key fields first)
    reasonkit.viewer.graph     the step and entry graphs of a run (from the protocols, else timing)
    reasonkit.viewer.terminal  the full run as wrapped plain text
    reasonkit.viewer.svg       inline SVG: the timeline (Gantt), the graphs, the confidence waterfall
    reasonkit.viewer.page      the HTML report of one run
    reasonkit.viewer.index     the HTML list of recent runs

Everything reads the one view of a run (reasonkit/presentation: `RunView`, built from a stored
trace as `StoreBackend.get` returns it, tolerating traces from other versions) and formats numbers
with `reasonkit.presentation.fmt`, as `rk think`, the MCP results and `rk runs show` do. Every
piece of user and model text goes through `html.escape`; the pages load nothing from anywhere
(inline CSS and SVG, no scripts).
"""

from __future__ import annotations

from reasonkit.viewer.index import render_index
from reasonkit.viewer.page import render_page
from reasonkit.viewer.terminal import render_full

__all__ = ["render_full", "render_index", "render_page"]
