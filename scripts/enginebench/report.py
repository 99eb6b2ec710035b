"""Render results/report.md from the result JSONs (through pandas and a StrictUndefined Jinja template).

The report answers first (per model: what to run for one user, for many, the smallest engine that
keeps quality, what to avoid), then gives one table per question with engines as rows, then an
appendix. Every number shown comes from a result file of this run, with its unit and spread; a value
that was not measured shows why. A failing engine's speed figures appear in no speed table.

What it says is decided in enginebench.findings; here and in report_cells (cells, tables),
report_speed (speed, cost, long context) and report_appendix it is only laid out.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import findings, paths
from . import results as records
from .columns import Row, row
from .figures import FIGURES
from .findings import load_results, ran, would_run
from .io import read_json
from .report_appendix import (
    disk_summary,
    environment_table,
    history_section,
    preflight_lines,
    quality_settings,
    samples_section,
    source_text,
    sweep_table,
)
from .report_cells import MB, fmt_number, markdown_table, pick_text, table
from .report_scaling import scaling_section
from .report_serve import serving_line, serving_section
from .report_speed import cost_section, depth_sections, speed_sections

# --- the answer -----------------------------------------------------------------------------------


def avoid_text(found: dict) -> str:
    """Why an engine that ran is not recommended, in one phrase (the full reasons are in the quality table)."""
    variant = found["variant"]
    if found["verdict"] == "FAIL":
        if found["broken"]:
            return f"`{variant}` (broken: {found['broken']})"
        ratio = (f": perplexity {found['perplexity_ratio']:.2f}× the reference's"
                 if found["perplexity_ratio"] is not None else "")
        failed = found["failed_checks"]
        return f"`{variant}` (fails {failed} quality check{'s' if failed > 1 else ''}{ratio})"
    return f"`{variant}` ({found['verdict']}: {'; '.join(found['reasons'])})"


def answer_lines(found: dict, batch_size: int, speed_only: str | None = None, slo: dict | None = None) -> list[str]:
    """The model's answer (findings.answer), one line each: one request at a time, many at once, the
    smallest engine that passes, what to avoid, what was not built; for a placeholder model, first that
    it is speed only."""
    lines = []
    if found["no_reference"]:  # the finding of this model: nothing below ranks its engines
        lines.append(f"**No reference**: {'; '.join(found['no_reference'])}. No engine of this model is judged "
                     "(verdict NO REFERENCE) and no winner is called; mend the reference engine or choose another "
                     "(`models.<name>.reference`).")
    if speed_only:
        lines.append(f"**Speed only**: {speed_only}. Every engine's quality verdict is NOT APPLICABLE; the picks "
                     "below rank speed and size alone, and say nothing of which engine keeps quality.")
    if found["busy"]:
        busy = ", ".join(f"`{v}` ({share:.0%} of the CPU)" for v, share in found["busy"].items())
        lines.append(f"**No winner called**: other processes were using the host while {busy} measured, "
                     "so these speeds cannot be ranked; re-measure on an idle host (`snakemake --forcerun bench`).")
    for i, pick in enumerate(found["picks"]):
        what = "One request at a time" if i == 0 else f"Many at once (batch {batch_size})"
        lines.append(pick_text(what, pick["ranking"], "tokens/s"))
    lines += serving_line(found.get("serving"), slo)
    if smallest := found["smallest"]:
        lines.append(f"Smallest{'' if speed_only else ' that passes'}: **`{smallest['variant']}`**, "
                     f"{fmt_number(smallest['weight_bytes'] / MB)} MB of weights in "
                     f"memory ({fmt_number(smallest['peak_bytes'] / MB)} MB peak).")
    if found["avoid"]:
        lines.append(f"Avoid, whatever their speed: {', '.join(avoid_text(a) for a in found['avoid'])}.")
    if found["not_built"]:
        names = ", ".join(f"`{n['variant']}`" for n in found["not_built"])
        predicted = ", ".join(f"`{n['variant']}` {n['predicted']}" for n in found["not_built"] if n["predicted"])
        lines.append(f"Not built here: {names} (why: \"Not built\" below)"
                     + (f"; predicted quality: {predicted}." if predicted else "."))
    return lines


# --- quality ----------------------------------------------------------------------------------------

def quality_section(results: dict[str, dict]) -> dict:
    """The quality table (engines that were scored and the stand-ins' predictions), each FAIL's reasons
    once, and what is the same for every engine."""
    rows, failures = [], []
    for variant, r in results.items():
        entries = [(variant, r["quality"], r["verdict"])] if r["quality"].get("status") == "ok" or ran(r) else []
        if "predicted" in r:
            p = r["predicted"]
            entries.append((f"{variant}, predicted by {p['by']}", p["record"], p["verdict"]))
        for engine, record, result in entries:
            rows.append(row("quality", Row(variant, r, label=engine, quality=record, verdict=result)))
            if result["verdict"] == "FAIL":
                failures.append(f"`{engine}`: {'; '.join(result['reasons'])}")
    scored = [r["quality"] for r in results.values() if r["quality"].get("status") == "ok"]
    reference = next((q for q in scored if q.get("is_reference")), None)
    parity = {v: r["bench"]["tokenizer_parity"] for v, r in results.items() if ran(r)}
    return {"table": table(rows), "failures": failures, "predicted": any("predicted" in r for r in results.values()),
            "reference": {"perplexity": fmt_number(reference["metrics"]["perplexity"]),
                          "tokens": f"{reference['metrics']['scored_tokens']:,}",
                          "repeated": f"{reference['metrics']['repeated_ngram_share']:.1%}"} if reference else None,
            "parity": parity_text(parity)}


def parity_text(parity: dict[str, dict]) -> str:
    """One sentence: which engines' own tokenizers give the snapshot's ids, which differ, which have none."""
    equal = [v for v, p in parity.items() if p["checked"] and p["equal"]]
    differ = [f"`{v}` ({len(p['mismatches'])} of {p['texts']} texts)" for v, p in parity.items()
              if p["checked"] and not p["equal"]]
    unchecked = [v for v, p in parity.items() if not p["checked"]]
    parts = ([f"equal for {', '.join(f'`{v}`' for v in equal)}"] if equal else []) + \
            ([f"DIFFERS for {', '.join(differ)}"] if differ else []) + \
            ([f"not applicable to {', '.join(f'`{v}`' for v in unchecked)} (no tokenizer of their own)"]
             if unchecked else [])
    return "; ".join(parts) or "no engine ran"


def render_report(layout: dict, root: Path) -> str:
    root = Path(root)
    preflight = records.read(root / paths.PREFLIGHT, "preflight")
    largest = max(layout["bench"]["batch_sizes"])
    models, unfetchable = [], []
    for mcfg in layout["models"]:
        model = mcfg["slug"]
        if "unfetchable" in mcfg:  # none of its jobs ran (Plan.unfetchable)
            unfetchable.append({"slug": model, "reason": mcfg["unfetchable"]})
            continue
        model_dir = root / "results" / model
        snapshot = records.read(root / paths.SNAPSHOT.format(model=model) / paths.MANIFEST, "snapshot")
        model_config = read_json(root / paths.SNAPSHOT.format(model=model) / "config.json")
        results = load_results(root, model, mcfg["variants"], layout["quality"]["gate"])
        host = {**preflight, "model_config": model_config}
        benches = [r["bench"] for r in results.values() if ran(r)]
        models.append({
            "slug": model,
            "answer": answer_lines(findings.answer(results, model_dir, largest), largest, mcfg["speed_only"],
                                   layout["serve"]["slo"]),
            "speed_only": mcfg["speed_only"],
            "source": source_text(snapshot["source"], snapshot["provenance"]),
            "snapshot_mb": fmt_number(snapshot["total_bytes"] / MB),
            "snapshot_s": fmt_number(snapshot["timings"]["import_s"]),
            "disk": disk_summary(root / paths.SNAPSHOT.format(model=model), snapshot, mcfg["variants"], results,
                                 preflight),
            "reference": mcfg["reference"],
            "quality": quality_section(results),
            "quality_settings": quality_settings(layout["quality"], results),
            "speed": speed_sections(mcfg, results, host, largest),
            "cost": cost_section(results),
            "depth": depth_sections(results, host),
            "serving": serving_section(results, layout["serve"], model),
            "scaling": scaling_section(results, host),
            "not_built": [{"variant": v, "status": r["status"][0], "reason": r["status"][1], "would_run": would_run(r)}
                          for v, r in results.items() if not ran(r)],
            "figures": [{"path": Path(paths.FIGURE.format(model=model, figure=name)).relative_to("results").as_posix(),
                         "title": title} for name, title in FIGURES.items()],
            "sweep": sweep_table(results),
            "history": history_section(model_dir, results, largest),
            "threads": benches[0]["threads"] if benches else None,
            "prompt_tokens": benches[0]["prompt_tokens"] if benches else [],
            "chat_template": benches[0]["uses_chat_template"] if benches else False,
            "samples": samples_section(layout["prompts"], results, mcfg["reference"]),
            "environment": markdown_table(environment_table(results)),
            "files": sorted(str(p.relative_to(root)) for p in model_dir.glob("*/*.json")),
        })
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    return env.get_template("report.md.j2").render(
        title=layout["title"], models=models, unfetchable=unfetchable, bench=layout["bench"], largest=largest,
        samples_max_new_tokens=layout["samples"]["max_new_tokens"],
        generated=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        preflight=preflight_lines(preflight),
    )
