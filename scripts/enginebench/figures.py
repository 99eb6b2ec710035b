"""The report's figures (PNG, matplotlib): tokens/s per engine with its spread, tokens/s and
inter-token latency against batch size, and weights in memory against tokens/s coloured by quality verdict.

They read the same result files as the report (bench and quality JSONs) and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import paths
from .io import read_json

FIGURES = {
    "throughput": "Tokens/s per engine, single-stream and at the largest batch (median, whiskers min–max)",
    "batch_sweep": "Tokens/s and inter-token latency against batch size",
    "size_vs_speed": "Weights in memory against tokens/s, coloured by quality verdict",
}
VERDICT_COLOURS = {"PASS": "#2a9d3f", "FAIL": "#d62728"}
OTHER_COLOUR = "#7f7f7f"
# Per-engine line colours: matplotlib's tab10 without its green and red, which mean PASS and FAIL here.
ENGINE_COLOURS = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
MARKERS = "osD^v<>"


def engine_points(root: Path, model: str, variants: list[dict], thresholds: dict) -> tuple[list[dict], list[str]]:
    """The engines that ran (slug, verdict, bench metrics, weights in memory), and those that did not."""
    from .quality import verdict  # numpy: kept out of Snakemake's start-up, which imports FIGURES

    ran, missing = [], []
    for spec in variants:
        bench = read_json(Path(root) / paths.BENCH.format(model=model, variant=spec["slug"]))
        if bench.get("status", "ok") != "ok":
            missing.append(spec["slug"])
            continue
        quality = read_json(Path(root) / paths.QUALITY.format(model=model, variant=spec["slug"]))
        ran.append({"slug": spec["slug"], "verdict": verdict(quality, thresholds)["verdict"],
                    "metrics": bench["metrics"], "weight_bytes": bench["engine_info"].get("weight_bytes")})
    return ran, missing


def colour(verdict_name: str) -> str:
    return VERDICT_COLOURS.get(verdict_name, OTHER_COLOUR)


def _sweep(point: dict) -> list[dict]:
    return point["metrics"]["sweep"]  # smallest batch first, as the bench writes it


def _footnote(fig, model: str, missing: list[str]) -> None:
    note = f"{model}; bars and points: median of the bench repetitions, whiskers: min–max"
    if missing:
        note += f". Not run on this host: {', '.join(missing)}"
    fig.text(0.01, 0.01, note, fontsize=8, color="#444444", ha="left", va="bottom", wrap=True)


def throughput_figure(model: str, ran: list[dict], missing: list[str]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.75 * max(len(ran), 1)))
    height = 0.38
    for i, point in enumerate(ran):
        sweep = _sweep(point)
        for offset, entry, hatch in ((-height / 2, sweep[0], "//"), (height / 2, sweep[-1], "")):
            s = entry["tokens_per_s"]
            ax.barh(i + offset, s["median"], height, color=colour(point["verdict"]), hatch=hatch,
                    edgecolor="white", xerr=[[s["median"] - s["min"]], [s["max"] - s["median"]]],
                    error_kw={"ecolor": "#222222", "capsize": 3})
    ax.set_yticks(range(len(ran)), [f"{p['slug']} ({p['verdict']})" for p in ran])
    ax.invert_yaxis()
    ax.set_xlabel("tokens/s (median of repetitions; whiskers: min–max)")
    largest = _sweep(ran[0])[-1]["batch_size"]
    ax.set_title(f"Tokens/s per engine: hatched = single-stream (batch 1), solid = batch {largest}")
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.08)
    _verdict_legend(ax, ran)
    _footnote(fig, model, missing)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def _verdict_legend(ax, ran: list[dict]) -> None:
    from matplotlib.patches import Patch

    seen = dict.fromkeys(p["verdict"] for p in ran)
    ax.legend(handles=[Patch(color=colour(v), label=f"quality {v}") for v in seen], fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)


def sweep_figure(model: str, ran: list[dict], missing: list[str]):
    import matplotlib.pyplot as plt

    fig, (speed, latency) = plt.subplots(1, 2, figsize=(12, 5))
    sizes = sorted({s["batch_size"] for p in ran for s in p["metrics"]["sweep"]})
    for i, point in enumerate(ran):
        sweep = _sweep(point)
        x = [s["batch_size"] for s in sweep]
        style = {"marker": MARKERS[i // len(ENGINE_COLOURS) % len(MARKERS)],
                 "color": ENGINE_COLOURS[i % len(ENGINE_COLOURS)],
                 "linestyle": "-" if point["verdict"] == "PASS" else "--", "capsize": 3,
                 "label": f"{point['slug']} ({point['verdict']})"}
        tps = [s["tokens_per_s"] for s in sweep]
        speed.errorbar(x, [t["median"] for t in tps], yerr=[[t["median"] - t["min"] for t in tps],
                                                             [t["max"] - t["median"] for t in tps]], **style)
        itl = [s["itl_s"] for s in sweep]
        latency.errorbar(x, [t["median"] * 1000 for t in itl],
                         yerr=[[0] * len(itl), [(t["p90"] - t["median"]) * 1000 for t in itl]], **style)
    for ax in (speed, latency):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("batch size (sequences decoded together)")
        ax.grid(alpha=0.3)
    speed.set_ylabel("tokens/s, all sequences of a batch")
    speed.set_title("Throughput (median; whiskers: min–max)")
    latency.set_ylabel("inter-token latency per sequence (ms)")
    latency.set_title("Inter-token latency (median; whisker up to p90)")
    speed.legend(fontsize=8)
    speed.set_ylim(bottom=0)
    latency.set_ylim(bottom=0)
    _footnote(fig, model, missing)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def size_figure(model: str, ran: list[dict], missing: list[str]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    placed = [p for p in ran if p["weight_bytes"]]
    x_span = max((p["weight_bytes"] / 1e6 for p in placed), default=1) * 1.2
    y_span = max((_sweep(p)[-1]["tokens_per_s"]["max"] for p in placed), default=1) * 1.15
    labelled = []
    for point in sorted(placed, key=lambda p: -_sweep(p)[-1]["tokens_per_s"]["median"]):
        entry = _sweep(point)[-1]["tokens_per_s"]
        x, y = point["weight_bytes"] / 1e6, entry["median"]
        ax.errorbar(x, y, yerr=[[y - entry["min"]], [entry["max"] - y]],
                    marker="o", markersize=9, color=colour(point["verdict"]), capsize=3)
        # Points close to ones already labelled get their label further down, so names never overlap.
        crowd = sum(abs(x - lx) < 0.08 * x_span and abs(y - ly) < 0.06 * y_span for lx, ly in labelled)
        ax.annotate(point["slug"], (x, y), textcoords="offset points", xytext=(9, 3 - 13 * crowd), fontsize=8)
        labelled.append((x, y))
    largest = _sweep(ran[0])[-1]["batch_size"]
    ax.set_xlabel("weights in memory (MB)")
    ax.set_ylabel(f"tokens/s at batch {largest} (median; whiskers: min–max)")
    ax.set_title("Size against speed, coloured by quality verdict")
    ax.set_xlim(0, x_span)
    ax.set_ylim(0, y_span)
    ax.grid(alpha=0.3)
    _verdict_legend(ax, placed)
    _footnote(fig, model, missing + [p["slug"] + " (size not reported)" for p in ran if not p["weight_bytes"]])
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


DRAW = {"throughput": throughput_figure, "batch_sweep": sweep_figure, "size_vs_speed": size_figure}


def write_figures(model: str, ran: list[dict], missing: list[str], out: dict[str, Path]) -> None:
    """Draw every figure of FIGURES into its path in `out` (temp file, then rename: never half a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, path in out.items():
        if ran:
            fig = DRAW[name](model, ran, missing)
        else:
            fig, ax = plt.subplots(figsize=(8, 2))
            ax.axis("off")
            ax.text(0.5, 0.5, f"{model}: no engine ran on this host ({', '.join(missing)})", ha="center", wrap=True)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
        try:
            fig.savefig(tmp, dpi=110)
            os.replace(tmp, path)
        finally:
            plt.close(fig)
            tmp.unlink(missing_ok=True)
