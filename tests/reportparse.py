"""Read a rendered report back: its sections and Markdown tables, as the tests check them."""

from __future__ import annotations

import re


def section(report: str, heading: str) -> str:
    """The text under the heading that starts with `heading` (any level), up to the next heading."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip().startswith(heading)
                 and line.startswith("#"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start + 1:end])


def tables(text: str) -> list[list[dict]]:
    """Every Markdown table in `text`, each as its rows (column header -> cell)."""
    found, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            head = cells(block[0])
            found.append([dict(zip(head, cells(row), strict=True)) for row in block[2:]])
        block = []
    return found


def cells(line: str) -> list[str]:
    parts, cell, escaped = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "|" and not escaped:
            parts.append(cell.strip())
            cell = ""
        else:
            cell += ch
        escaped = ch == "\\"
    return parts + [cell.strip()]


def table(report: str, heading: str) -> dict[str, dict]:
    """The first table under `heading`, keyed by its first column (the engine)."""
    (rows, *_) = tables(section(report, heading))
    return {next(iter(row.values())): row for row in rows}


def column(report: str, heading: str, name: str) -> dict[str, str]:
    """Column `name` of the first table under `heading` (engine -> cell); a column equal in every row is
    not in the table but in the sentence after it, "Same for every engine: <name>: <value>; …"."""
    rows = table(report, heading)
    if all(name in row for row in rows.values()):
        return {engine: row[name] for engine, row in rows.items()}
    same = re.search(r"Same for every \w+: (.*)\.$", section(report, heading), re.MULTILINE)
    value = same and re.search(re.escape(name) + r": (.+?)(?:; |$)", same.group(1))
    assert value, f"no column {name!r} under {heading!r}, in its table or its constant-columns sentence"
    return dict.fromkeys(rows, value.group(1))


def widths(report: str) -> list[int]:
    return [len(rows[0]) for rows in tables(report) if rows]


SPEED_HEADINGS = ("How fast: one request at a time", "How fast: many requests at once", "Batch sweep")


def speed_engines(report: str) -> set[str]:
    """Every engine named in a row of a speed table (both "How fast" tables and the batch sweep)."""
    return {row["Engine"] for heading in SPEED_HEADINGS if heading in report
            for rows in tables(section(report, heading)) for row in rows}
