"""What else used the host while a bench measured: load average, and the CPU time of other processes
(the host's busy CPU time from /proc/stat, steal included, minus this process's and its descendants':
finished children through getrusage, living ones, such as torch.compile's worker pool, from /proc)."""

from __future__ import annotations

import os
import resource
import time

# Other processes using this share of the host's CPU capacity or more make a bench's speeds unfit for
# ranking (a core burnt beside a 2-core bench is 50 %; an idle host shows a few %).
BUSY_SHARE = 0.15
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (guest is inside user)


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole host since boot, or None where /proc/stat is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return sum(fields[i] for i in _BUSY_FIELDS if i < len(fields)) / tick, sum(fields[:8]) / tick


def _living_descendants_seconds(root: int | None = None) -> float:
    """CPU seconds of the living descendants of `root` (this process by default; getrusage counts only
    children waited for)."""
    children: dict[int, list[int]] = {}
    seconds: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()  # after "pid (comm)"
            ppid, cpu = int(fields[1]), int(fields[11]) + int(fields[12])  # stat fields 4, 14, 15
        except (OSError, ValueError, IndexError):  # gone meanwhile, or unreadable
            continue
        pid = int(entry.name)
        children.setdefault(ppid, []).append(pid)
        seconds[pid] = cpu / tick  # utime + stime
    total, todo = 0.0, list(children.get(root or os.getpid(), []))
    while todo:
        pid = todo.pop()
        total += seconds[pid]
        todo.extend(children.get(pid, []))
    return total


def _own_seconds() -> float:
    if "TORCHELASTIC_RUN_ID" in os.environ and os.path.isdir("/proc"):
        # one rank of a tensor-parallel engine (enginebench.tensor_parallel): every rank torchrun started,
        # this one included (alive), is the engine's own
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return _living_descendants_seconds(os.getppid()) + children.ru_utime + children.ru_stime
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    living = _living_descendants_seconds() if os.path.isdir("/proc") else 0.0
    return sum(u.ru_utime + u.ru_stime for u in usage) + living


def sample() -> dict:
    """The counters at one moment; `host_load(sample())` later gives what others used in between."""
    return {"wall": time.perf_counter(), "cpu": _cpu_seconds(), "own": _own_seconds(), "loadavg": os.getloadavg()}


def host_load(before: dict) -> dict:
    """Load averages before and after, other processes' CPU seconds and their share of the host's
    capacity over the interval, and whether that made the host busy (share ≥ BUSY_SHARE)."""
    after = sample()
    record = {"loadavg_before": list(before["loadavg"]), "loadavg_after": list(after["loadavg"]),
              "wall_s": after["wall"] - before["wall"], "busy_share_threshold": BUSY_SHARE}
    if before["cpu"] is None or after["cpu"] is None:
        return {**record, "other_cpu_s": None, "other_share": None, "busy": None,
                "why": "no /proc/stat on this host: other processes' CPU time unknown"}
    busy_s, total_s = after["cpu"][0] - before["cpu"][0], after["cpu"][1] - before["cpu"][1]
    other = max(busy_s - (after["own"] - before["own"]), 0.0)
    share = other / total_s if total_s > 0 else 0.0
    return {**record, "other_cpu_s": other, "other_share": share, "busy": share >= BUSY_SHARE}
