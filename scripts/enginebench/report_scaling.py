"""The report's section on engines spread over several GPUs (issue 25), laid out from findings.scaling: per
family of engines that differ only in the GPUs they span, tokens/s at each count and batch size against the
fewest GPUs the engine ran on, then what one GPU holds and the roofline against the bandwidth one decode
stream reads (every GPU of a tensor or row split at once)."""

from __future__ import annotations

from .columns import Row, notes, row
from .findings import scaling
from .report_cells import table

SPLITS = {"tensor": "tensor parallel", "layer": "layer split", "row": "row split"}


def gpus_count(gpus: int, device: str | None = None) -> str:
    """'2 GPUs'; for an engine that ran on the CPU (`device` "cpu": a torch split's ranks), its processes."""
    if device == "cpu":
        return f"{gpus} CPU process{'es' if gpus > 1 else ''}"
    return f"{gpus} GPU{'s' if gpus > 1 else ''}"


def scaling_section(results: dict[str, dict], host: dict) -> dict | None:
    """None where no engine of the model spans several GPUs beside one of its own settings on fewer."""
    families = scaling(results)
    if not families:
        return None
    shown, on_memory = [], {}

    def device_of(member: dict) -> str | None:
        return results[member["variant"]]["bench"]["engine_info"].get("device")

    for family in families:
        title = f"`{family['backend']}`, {SPLITS[family['mode']]}"
        sources = [Row(m["variant"], results[m["variant"]], host, point=point)
                   for m in family["shown"] for point in m["points"]]
        base = next((m for m in family["shown"] if m["variant"] == family["base"]), None)
        shown.append({
            "title": title,
            "base": f"`{base['variant']}` ({gpus_count(base['gpus'], device_of(base))})" if base else None,
            "table": table([row("scaling", source) for source in sources], keep=("Engine", "GPUs", "Batch size"),
                           notes=notes("scaling", sources)),
            "elsewhere": [f"`{m['variant']}` (device {m['device']})" for m in family["elsewhere"]],
            "failed": [f"`{m['variant']}` ({gpus_count(m['gpus'], device_of(m))}): {m['verdict']}"
                       for m in family["failed"]],
            "not_run": [f"`{m['variant']}` ({gpus_count(m['gpus'])}): {m['reason']}" for m in family["not_run"]],
        })
        for m in family["shown"] + family["elsewhere"] + family["failed"]:
            on_memory[m["variant"]] = Row(m["variant"], results[m["variant"]], host)
    memory = list(on_memory.values())  # None where none of them ran
    return {"families": shown, "memory": table([row("scaling_memory", source) for source in memory],
                                               keep=("Engine", "GPUs"), notes=notes("scaling_memory", memory))}
