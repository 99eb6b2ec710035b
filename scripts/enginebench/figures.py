"""The report's figures (PNG, matplotlib): quality loss against single-stream speed, with the frontier
of the engines that pass the quality gate, inter-token latency against throughput across batch
sizes, one line per passing engine, and where engines are served, their latency against requests/s.

They read the same result files as the report (bench, quality and serve JSONs) and nothing else. Engines are
named in a legend beside the axes, never next to a marker, so no label can cover a point.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import paths, results
from .verdicts import SPEED_SHOWN, verdict

FIGURES = {
    "quality_vs_speed": "Quality loss (mean KL divergence from the reference) against single-stream tokens/s",
    "latency_vs_throughput": "Inter-token latency against tokens/s across batch sizes, one line per passing engine",
}
# Drawn when the config serves its engines (serve.enabled), from the serve results.
SERVE_FIGURE = {"serving": "Latency (p90) against requests/s served, one line per engine, the SLO dashed"}
# Per-engine colours: matplotlib's tab10 without its green and red, which would read as PASS and FAIL.
ENGINE_COLOURS = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
MARKERS = "osD^v<>pPX"
KL_FLOOR = 1e-4  # the reference's own KL is 0: drawn at this floor of the log axis


def engine_points(root: Path, model: str, variants: list[dict], thresholds: dict) -> tuple[list[dict], list[str]]:
    """The engines that ran (slug, verdict, bench metrics, mean KL), and those that did not."""
    ran, missing = [], []
    for spec in variants:
        bench = results.read(Path(root) / paths.BENCH.format(model=model, variant=spec["slug"]), "bench")
        if bench.get("status", "ok") != "ok":
            missing.append(spec["slug"])
            continue
        quality = results.read(Path(root) / paths.QUALITY.format(model=model, variant=spec["slug"]), "quality")
        ran.append({"slug": spec["slug"], "verdict": verdict(quality, thresholds)["verdict"],
                    "metrics": bench["metrics"], "kl": quality.get("metrics", {}).get("kl_divergence_mean")})
    return ran, missing


def served_points(root: Path, model: str, variants: list[dict], thresholds: dict) -> list[dict]:
    """The served engines whose serving figures are shown (speed shown, server's answers equal to the
    engine's: enginebench.findings.serve_shown): slug, its colour index, the sweep's steps."""
    points = []
    for i, spec in enumerate(variants):
        if not spec.get("served"):
            continue
        served = results.read(Path(root) / paths.SERVE.format(model=model, variant=spec["slug"]), "serve")
        quality = results.read(Path(root) / paths.QUALITY.format(model=model, variant=spec["slug"]), "quality")
        if served["status"] == "ok" and verdict(quality, thresholds)["verdict"] in SPEED_SHOWN:
            points.append({"slug": spec["slug"], "index": i, "steps": served["steps"]})
    return points


def serving_figure(model: str, served: list[dict], slo: dict):
    """TTFT p90 and ITL p90 against requests/s at each step of the load sweep, the SLO's targets dashed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, key, target, label in ((axes[0], "ttft_ms", slo["ttft_ms"], "time to first token, p90 (ms)"),
                                   (axes[1], "itl_ms", slo["itl_ms"], "inter-token latency, p90 (ms)")):
        for point in served:
            s = style(point["index"])
            steps = [st for st in point["steps"] if "p90" in st[key]]
            x, y = [st["requests_per_s"] for st in steps], [st[key]["p90"] for st in steps]
            ax.plot(x, y, color=s["color"], marker=s["marker"], linewidth=1.5, label=point["slug"])
        ax.axhline(target, color="#d62728", linestyle="--", linewidth=1, label=f"SLO: ≤ {target:g} ms")
        ax.set_xlabel("requests/s served (one point per step of the sweep)")
        ax.set_ylabel(label)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    _legend(axes[1])
    _footnote(fig, f"{model}. Engines whose server passed the served-output check and whose speed the report "
              "shows (enginebench.findings.serve_shown); each point the median over the engine's GuideLLM sweeps."
              + ("" if served else " None was served and shown."))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def style(i: int) -> dict:
    return {"color": ENGINE_COLOURS[i % len(ENGINE_COLOURS)], "marker": MARKERS[i % len(MARKERS)]}


def _sweep(point: dict) -> list[dict]:
    return point["metrics"]["sweep"]  # smallest batch first, as the bench writes it


def _footnote(fig, note: str) -> None:
    fig.text(0.01, 0.01, note, fontsize=8, color="#444444", ha="left", va="bottom", wrap=True)


def _legend(ax) -> None:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, frameon=False)


def pareto_frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (speed, loss) points no other point beats on both (faster and no worse, or as fast and
    better), fastest first."""
    frontier, best_loss = [], float("inf")
    for speed, loss in sorted(points, key=lambda p: (-p[0], p[1])):
        if loss < best_loss:
            frontier.append((speed, loss))
            best_loss = loss
    return frontier


def quality_figure(model: str, ran: list[dict], missing: list[str], thresholds: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
    scored = [p for p in ran if p["kl"] is not None]
    passing = []
    for i, point in enumerate(scored):
        tps = _sweep(point)[0]["tokens_per_s"]
        kl = max(point["kl"], KL_FLOOR)
        ok = point["verdict"] == "PASS"
        s = style(i)
        ax.errorbar(tps["median"], kl, xerr=[[tps["median"] - tps["min"]], [tps["max"] - tps["median"]]],
                    marker=s["marker"], color=s["color"], markersize=9, capsize=3, linestyle="none",
                    markerfacecolor=s["color"] if ok else "white", markeredgewidth=1.5,
                    label=f"{point['slug']} ({point['verdict']})")
        if ok:
            passing.append((tps["median"], kl))
    frontier = pareto_frontier(passing)
    if len(frontier) > 1:
        ax.step([x for x, _ in frontier], [y for _, y in frontier], where="post", color="#2a9d3f", alpha=0.6,
                linewidth=2, zorder=0, label="frontier of passing engines")
    if thresholds.get("max_kl_divergence") is not None:
        ax.axhline(thresholds["max_kl_divergence"], color="#d62728", linestyle="--", linewidth=1,
                   label=f"gate: mean KL ≤ {thresholds['max_kl_divergence']:g} nats")
    ax.set_yscale("log")
    ax.set_xlabel("tokens/s, single-stream (median; whiskers: min–max)")
    ax.set_ylabel(f"mean KL divergence from the reference (nats, log; {KL_FLOOR:g} = none)")
    ax.set_title("Quality loss against single-stream speed (filled: passes the gate, hollow: fails)")
    ax.grid(alpha=0.3, which="both")
    ax.margins(x=0.1, y=0.15)
    _legend(ax)
    unscored = [p["slug"] for p in ran if p["kl"] is None and p["verdict"] != "NOT APPLICABLE"]
    placeholder = [p["slug"] for p in ran if p["verdict"] == "NOT APPLICABLE"]
    _footnote(fig, f"{model}. Lower and further right is better."
              + (f" Not run on this host: {', '.join(missing)}." if missing else "")
              + (f" No logits to score: {', '.join(unscored)}." if unscored else "")
              + (f" Placeholder weights, quality not measured: {', '.join(placeholder)}." if placeholder else ""))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def latency_figure(model: str, ran: list[dict], missing: list[str], thresholds: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
    passing = [p for p in ran if p["verdict"] in SPEED_SHOWN]
    sizes = sorted({s["batch_size"] for p in passing for s in _sweep(p)})
    for i, point in enumerate(ran):
        if point["verdict"] not in SPEED_SHOWN:
            continue
        sweep, s = _sweep(point), style(i)
        x = [e["tokens_per_s"]["median"] for e in sweep]
        y = [e["itl_s"]["median"] * 1000 for e in sweep]
        ax.plot(x, y, color=s["color"], linewidth=1.5, label=point["slug"])
        ax.scatter(x, y, color=s["color"], marker=s["marker"], zorder=3,
                   s=[24 + 60 * sizes.index(e["batch_size"]) / max(len(sizes) - 1, 1) for e in sweep])
    ax.set_xlabel("tokens/s, all sequences of a batch (median)")
    ax.set_ylabel("inter-token latency per sequence (ms, median)")
    ax.set_title("Latency against throughput; along each line the batch grows: "
                 + ", ".join(str(b) for b in sizes) + " (bigger marker)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if passing:
        _legend(ax)
    failing = [p["slug"] for p in ran if p["verdict"] not in SPEED_SHOWN]
    speed_only = any(p["verdict"] == "NOT APPLICABLE" for p in ran)
    _footnote(fig, f"{model}. " + ("Placeholder weights: every engine that ran, no quality gate." if speed_only
                                   else "Engines that pass the quality gate only.")
              + (f" Left out: {', '.join(failing)} (no PASS)." if failing else "")
              + (f" Not run on this host: {', '.join(missing)}." if missing else ""))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


DRAW = {"quality_vs_speed": quality_figure, "latency_vs_throughput": latency_figure}


def write_figures(model: str, ran: list[dict], missing: list[str], thresholds: dict, out: dict[str, Path],
                  serving: tuple[list[dict], dict] | None = None) -> None:
    """Draw every figure of FIGURES into its path in `out`, and with `serving` (its points and the SLO) the
    serving figure into out["serving"]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, path in out.items():
        if name in SERVE_FIGURE:
            save(serving_figure(model, *serving), path)
            continue
        if ran:
            fig = DRAW[name](model, ran, missing, thresholds)
        else:
            fig, ax = plt.subplots(figsize=(8, 2))
            ax.axis("off")
            ax.text(0.5, 0.5, f"{model}: no engine ran on this host ({', '.join(missing)})", ha="center", wrap=True)
        save(fig, path)


def save(fig, path: Path) -> None:
    """Write `fig` to `path` (temp file, then rename: never half a PNG) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
