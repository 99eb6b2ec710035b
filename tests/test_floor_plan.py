"""The library's floor plan (issue 21): what keeps it a set of parts rather than one tangle."""

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "scripts" / "enginebench"


def imports_of_the_library() -> dict[str, set[str]]:
    """Each module's imports of the library's own modules, those inside functions included (a deferred
    import is still a dependency: deferring it only hides a circle)."""
    graph = {}
    for file in LIBRARY.rglob("*.py"):
        parts = list(file.relative_to(LIBRARY.parent).with_suffix("").parts)
        package = parts[:-1]
        name = ".".join(package if file.name == "__init__.py" else parts)
        deps = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                module = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
                deps |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        graph[name] = deps
    return {name: {d for d in deps if d in graph and d != name} for name, deps in graph.items()}


def a_circle(graph: dict[str, set[str]]) -> list[str] | None:
    done = set()

    def visit(module, path):
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for dep in sorted(graph[module]):
            if circle := visit(dep, path + [module]):
                return circle
        done.add(module)
        return None

    return next((c for m in sorted(graph) if (c := visit(m, []))), None)


def test_the_circle_finder_finds_one():
    assert a_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert a_circle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_the_library():
    graph = imports_of_the_library()
    assert len(graph) > 30 and "enginebench.progress" in graph["enginebench.stages"]
    assert a_circle(graph) is None


# what became of report.py (732 lines when issue 21 was filed): the renderer, what it reads and decides
REPORT_MODULES = ("report.py", "report_*.py", "findings.py", "columns.py", "per_gpu.py", "verdicts.py")


def test_the_report_modules_stay_small():
    """Issue 21's count: no module of the report over 300 lines, no function of it over 60."""
    files = sorted({f for pattern in REPORT_MODULES for f in LIBRARY.glob(pattern)})
    assert len(files) >= 8
    too_long = [f"{f.name}: {n} lines" for f in files if (n := len(f.read_text().splitlines())) > 300]
    too_long += [f"{f.name}: {node.name}, {node.end_lineno - node.lineno + 1} lines"
                 for f in files for node in ast.walk(ast.parse(f.read_text()))
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60]
    assert not too_long
