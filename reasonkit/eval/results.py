"""An eval's output folder: `meta.json` (what is evaluated, on which model), `items.jsonl` (one line
per finished item and arm, appended as it finishes, so an interrupted eval resumes where it
stopped) and `summary.json` (the metrics, rewritten at the end of every run).

Rows: `id`, `arm` ("tool" or "direct"), `expected`, `answer` (the short final answer), `correct`,
`score`, `confidence`, `confidence_raw` (the heuristic before a fitted calibrator; equal to
`confidence` when none applied), `status`, `tokens`, `cost_usd`, `duration_s`, `provider`, `model`,
and `error` when the item failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loguru import logger

from reasonkit.errors import EvalError
from reasonkit.eval.metrics import summarize

__all__ = ["ARMS", "EvalLog", "IDENTITY", "ITEMS", "META", "SUMMARY", "load_summary", "summarize_rows"]

ITEMS = "items.jsonl"
META = "meta.json"
SUMMARY = "summary.json"
ARMS = ("tool", "direct")
# meta.json keys that must match to resume into a folder (mixing them would mix measurements)
IDENTITY = ("kind", "name", "dataset", "model")


class EvalLog:
    """The output folder of one eval."""

    def __init__(self, directory: Path | str):
        self.dir = Path(directory).expanduser()

    @property
    def items_path(self) -> Path:
        return self.dir / ITEMS

    def meta(self) -> dict[str, Any] | None:
        path = self.dir / META
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EvalError(f"{path}: cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise EvalError(f"{path}: not an eval's meta.json")
        return data

    def start(self, meta: dict[str, Any]) -> None:
        """Create the folder, or check that it holds an eval of the same thing (to resume it)."""
        if self.dir.exists() and not self.dir.is_dir():
            raise EvalError(f"{self.dir} is not a folder")
        old = self.meta()
        if old is not None:
            differs = [k for k in IDENTITY if old.get(k) != meta.get(k)]
            if differs:
                what = ", ".join(f"{k} {old.get(k)!r} (now {meta.get(k)!r})" for k in differs)
                raise EvalError(f"{self.dir} holds another eval ({what}): give another --output folder")
            self._end_torn_line()
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_json(META, meta)

    def _end_torn_line(self) -> None:
        """A write cut off by a kill leaves a line without its newline: end it, so the next row
        starts on a line of its own (the torn line is skipped when read)."""
        path = self.items_path
        if path.is_file() and path.stat().st_size > 0:
            with path.open("rb+") as handle:
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")

    def rows(self) -> list[dict[str, Any]]:
        """Every row written so far; a torn last line (a process killed mid-write) is skipped."""
        if not self.items_path.is_file():
            return []
        rows = []
        try:
            lines = self.items_path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise EvalError(f"{self.items_path}: cannot be read: {exc}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                logger.warning(
                    "{}: line {} is not JSON (an interrupted write?), skipped", self.items_path, number
                )
                continue
            if isinstance(row, dict) and "id" in row and row.get("arm") in ARMS:
                rows.append(row)
        return rows

    def done(self) -> set[tuple[str, str]]:
        return {(str(r["id"]), str(r["arm"])) for r in self.rows()}

    def append(self, row: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.items_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()

    def write_summary(self, summary: dict[str, Any]) -> None:
        self._write_json(SUMMARY, summary)

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        path = self.dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)


def _number(*values: Any) -> float:
    """The first value that is a number (a row's raw confidence, else its confidence), else 0."""
    return next((float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)), 0.0)


def _arm(rows: list[dict[str, Any]], key: str = "confidence") -> dict[str, Any]:
    confidence = [_number(r.get(key), r.get("confidence")) for r in rows]
    correct = [bool(r.get("correct")) for r in rows]
    out = summarize(confidence, correct)
    out["tokens"] = sum(int(r.get("tokens") or 0) for r in rows)
    out["cost_usd"] = round(sum(float(r.get("cost_usd") or 0.0) for r in rows), 6)
    out["time_s"] = round(sum(float(r.get("duration_s") or 0.0) for r in rows), 1)
    out["errors"] = sum(1 for r in rows if r.get("error"))
    return out


def _multiple(tool: float, direct: float) -> float | None:
    return round(tool / direct, 2) if direct > 0 else None


def summarize_rows(
    rows: list[dict[str, Any]], meta: dict[str, Any], ids: list[str] | None = None
) -> dict[str, Any]:
    """The report of an eval: each arm's metrics side by side, and the tool's cost and time as
    multiples of the direct baseline's. `ids`: only these items (the current selection)."""
    if ids is not None:
        wanted = set(ids)
        rows = [r for r in rows if str(r["id"]) in wanted]
    tool_rows = [r for r in rows if r["arm"] == "tool"]
    direct_rows = [r for r in rows if r["arm"] == "direct"]
    summary: dict[str, Any] = {
        "target": {"kind": meta.get("kind"), "name": meta.get("name")},
        "dataset": meta.get("dataset"),
        "provider": meta.get("provider"),
        "model": meta.get("model"),
        "seed": meta.get("seed"),
        "tool": _arm(tool_rows),
        "direct": _arm(direct_rows) if direct_rows else None,
    }
    if any(r.get("confidence_raw") not in (None, r.get("confidence")) for r in tool_rows):
        summary["tool_raw"] = _arm(tool_rows, "confidence_raw")
    if summary["direct"] is not None:
        tool, direct = summary["tool"], summary["direct"]
        summary["multiples"] = {
            "tokens": _multiple(tool["tokens"], direct["tokens"]),
            "cost": _multiple(tool["cost_usd"], direct["cost_usd"]),
            "time": _multiple(tool["time_s"], direct["time_s"]),
        }
    return summary


def load_summary(directory: Path | str) -> tuple[EvalLog, dict[str, Any], list[dict[str, Any]]]:
    """(log, summary, rows) of a finished or interrupted eval folder; EvalError when it is none."""
    log = EvalLog(directory)
    meta = log.meta()
    if meta is None:
        raise EvalError(f"{log.dir} is not an eval output folder (no {META}): run rk eval --output {log.dir}")
    rows = log.rows()
    return log, summarize_rows(rows, meta), rows
