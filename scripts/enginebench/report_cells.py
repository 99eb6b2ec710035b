"""The report's cells and tables: numbers with their spread and unit, Markdown tables whose constant
columns move into a sentence above them, the pick of the answer."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

MB = 1e6


@dataclass(frozen=True)
class Cell:
    text: str
    value: float | None = None  # the number behind the text (rankings, speedups)


def fmt_number(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def summary_cell(summary: dict) -> Cell:
    """Median with its min–max range and repetition count, e.g. '12.3 (11.9–12.6, n=3)'."""
    med = summary["median"]
    if summary["n"] == 1:
        return Cell(f"{fmt_number(med)} (n=1)", med)
    lo, hi = summary["min"], summary["max"]
    return Cell(f"{fmt_number(med)} ({fmt_number(lo)}–{fmt_number(hi)}, n={summary['n']})", med)


def latency_cell(summary: dict) -> Cell:
    """A latency in ms: median and p90 over every measured token, e.g. '41.2; p90 47.9 (n=93)'."""
    med = summary["median"] * 1000
    return Cell(f"{fmt_number(med)}; p90 {fmt_number(summary['p90'] * 1000)} (n={summary['n']:,})", med)


def thousandths(summary: dict) -> dict:
    """A summary in a unit a thousand times smaller (s -> ms, J -> mJ), for its cell."""
    return {**summary, **{k: summary[k] * 1000 for k in ("median", "min", "max")}}


def speedup_text(value: float | None, baseline: float | None) -> str:
    """One direction only: the figure divided by the baseline's, e.g. '1.63×' (faster) or '0.55×'."""
    if value is None or not baseline:
        return "—"
    return f"{value / baseline:.2f}×"


def markdown_table(frame: pd.DataFrame) -> str:
    def esc(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(esc(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def table(rows: list[dict], keep: tuple[str, ...] = ("Engine",), notes: list[str] = ()) -> dict | None:
    """{"table": Markdown, "constant": ["Column: value", ...], "notes": [...]}: columns with one value in
    every row (of two or more) leave the table and go into the sentence above it; `notes` (what a
    column counts) go above it too. None without rows."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    constant = [c for c in frame.columns if c not in keep and len(frame) > 1 and frame[c].astype(str).nunique() == 1]
    return {"table": markdown_table(frame.drop(columns=constant)),
            "constant": [f"{c}: {frame[c].iloc[0]}" for c in constant], "notes": list(notes)}


def figure_text(summary: dict, unit: str) -> str:
    """'89.5 tokens/s (86.0–89.9, n=3)': the median with its unit, then its range and n."""
    text = summary_cell(summary).text
    return text.replace(" (", f" {unit} (", 1)


def pick_text(what: str, ranking: list[dict], unit: str) -> str:
    """'<what>: **`A`**, 89.5 tokens/s (86.0–89.9, n=3); a tie with `B`, 87.1 tokens/s (…): ranges overlap.'"""
    if not ranking:
        return f"{what}: no engine passes the quality gate."
    best, ties = ranking[0], [r for r in ranking[1:] if r["tie"]]
    text = f"{what}: **`{best['variant']}`**, {figure_text(best['summary'], unit)}"
    if ties:
        text += "; a tie with " + "; ".join(f"`{r['variant']}`, {figure_text(r['summary'], unit)}: {r['tie']}"
                                            for r in ties)
    return text + "."
