"""The Markdown report of `python -m bench` (docs/benchmarks.md), one module per part:

- machine.py: machine information (`machine_info`) and its table;
- markdown.py: tables and number formatting shared by the sections;
- summary.py: the summary table of goals; why.py: the reasons shown next to missed goals;
- provider.py (section 1), mcp.py (2), engine.py (3a), critical_path.py (3b, 3c), load.py (4),
  startup.py (5);
- document.py: `render_markdown`, the whole report.
"""

from bench.report.document import render_markdown
from bench.report.machine import machine_info

__all__ = ["machine_info", "render_markdown"]
