"""The one stylesheet of the run pages, inlined into each page (no fonts, no external files).
Light and dark colour schemes follow the reader's system setting."""

from __future__ import annotations

CSS = """
:root{--fg:#1d232a;--muted:#66707a;--bg:#fff;--panel:#f5f7f9;--line:#d8dde2;--accent:#2f6db5;
--ok:#3c9a5f;--degraded:#d99a22;--failed:#c8453c;--skipped:#9aa3ab;--cancelled:#8a5cc2;
--running:#2f8fb5;--pending:#c5ccd2;--up:#3c9a5f;--down:#c8453c;--base:#2f6db5}
@media (prefers-color-scheme:dark){:root{--fg:#e3e7ea;--muted:#9aa4ad;--bg:#15191d;--panel:#1e2428;
--line:#343c43;--accent:#6ea8ea;--pending:#4a535b}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:18px 22px 60px}
a{color:var(--accent)}
h1{font-size:1.45em;margin:.2em 0 .4em;white-space:pre-wrap;overflow-wrap:anywhere}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}
h3{font-size:1.05em;margin:0}
h4{font-size:1em;margin:0}
.muted,.tick{color:var(--muted);fill:var(--muted)}
.crumbs{font-size:.9em;color:var(--muted)}
.facts{display:flex;flex-wrap:wrap;gap:6px 18px;margin:.3em 0;font-size:.93em}
.facts b{font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:.85em;
font-weight:600;background:var(--skipped)}
.badge.s-ok,.badge.s-complete{background:var(--ok)}.badge.s-degraded,.badge.s-incomplete{background:var(--degraded)}
.badge.s-failed{background:var(--failed)}.badge.s-cancelled,.badge.s-interrupted{background:var(--cancelled)}
.badge.s-running{background:var(--running)}.badge.s-pending{background:var(--pending);color:var(--fg)}
.verdict-meets{color:var(--ok);font-weight:600}.verdict-below{color:var(--failed);font-weight:600}
.answer{background:var(--panel);border-left:4px solid var(--accent);padding:10px 14px;
white-space:pre-wrap;overflow-wrap:anywhere}
.alert{border-left:4px solid var(--degraded);background:var(--panel);padding:6px 12px;margin:.4em 0;
white-space:pre-wrap;overflow-wrap:anywhere}
.alert.error{border-color:var(--failed)}
svg{display:block;max-width:100%;height:auto;font-size:12px}
svg text{fill:var(--fg)}
svg .lbl-entry{font-weight:700}
svg .tick{fill:var(--muted);font-size:11px}
svg .muted{fill:var(--muted);font-style:italic}
.axis{stroke:var(--line)}.grid{stroke:var(--line);stroke-dasharray:2 3}
.bar.s-ok,.node.s-ok,.node.s-complete,.bar.s-complete{fill:var(--ok)}
.bar.s-degraded,.node.s-degraded,.node.s-incomplete,.bar.s-incomplete{fill:var(--degraded)}
.bar.s-failed,.node.s-failed{fill:var(--failed)}.bar.s-skipped,.node.s-skipped{fill:var(--skipped)}
.bar.s-cancelled,.node.s-cancelled{fill:var(--cancelled)}.bar.s-running,.node.s-running{fill:var(--running)}
.bar.s-pending,.node.s-pending,.bar.s-other,.node.s-other{fill:var(--pending)}
.bar-entry{opacity:.35}
.call{fill:var(--fg);opacity:.55}.call-cached{fill:var(--accent)}.call-err{fill:var(--failed)}
.node{stroke:var(--fg);stroke-opacity:.25}
.node-label{fill:#fff;font-weight:600}
.edge{fill:none;stroke:var(--muted);stroke-width:1.4}.arrowhead{fill:var(--muted)}
.wf-base{fill:var(--base)}.wf-up{fill:var(--up)}.wf-down{fill:var(--down)}.wf-total{fill:var(--fg);opacity:.8}
.threshold{stroke:var(--failed);stroke-width:1.5;stroke-dasharray:5 3}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.85em;color:var(--muted);margin:.3em 0}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle;padding:0}
.legend i.call{background:var(--fg);opacity:.55}.legend i.call-cached{background:var(--accent)}
.graphs{display:flex;flex-wrap:wrap;gap:14px 30px;align-items:flex-start}
.graphs figure{margin:0}.graphs figcaption{font-size:.9em;color:var(--muted)}
details{margin:.35em 0}
summary{cursor:pointer}
details.entry{border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:12px 0}
details.entry>summary{font-weight:600}
.step{border-left:4px solid var(--skipped);padding:6px 12px;margin:12px 0;background:var(--panel);
border-radius:0 6px 6px 0}
.step.s-ok{border-color:var(--ok)}.step.s-degraded{border-color:var(--degraded)}
.step.s-failed{border-color:var(--failed)}.step.s-cancelled{border-color:var(--cancelled)}
.step .facts{font-size:.88em;color:var(--muted)}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--bg);border:1px solid var(--line);
padding:8px;font-size:12.5px;max-height:32em;overflow:auto}
dl.out{margin:.3em 0;display:grid;grid-template-columns:minmax(90px,max-content) 1fr;gap:3px 12px}
dl.out dt{color:var(--muted);font-size:.9em;padding-top:1px}
dl.out dd{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}
dl.out dt.key,dl.out dd.key{font-weight:600;color:var(--fg)}
dl.out ul{margin:0;padding-left:1.2em;white-space:normal}
dl.out li>dl.out{margin:.1em 0 .4em}
table{border-collapse:collapse;font-size:.9em;width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
form.filters{display:flex;gap:10px;align-items:end;flex-wrap:wrap;margin:.6em 0}
form.filters label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
footer{margin-top:40px;font-size:.85em;color:var(--muted)}
"""
