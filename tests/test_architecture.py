"""The layout keeps its promises: PuLP only in the model and solver back-end, nothing after the
solver imports the optimiser, no import cycle between the product's modules, bench/ on the
public interface."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PLANNER = Path("planner")
PULP_ALLOWED = {"planner/optimise/model.py", "planner/optimise/backends.py"}
#: stages after the solver: they read the Plan or result.json, never the model or the solver
AFTER_SOLVER = ("planner/plan/", "planner/verify.py", "planner/outputs/")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import in a file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module if node.level == 0 else _resolve(path, node.module, node.level)
            out.append((mod, id(node) in top))
    return out


def _resolve(path: Path, module: str, level: int) -> str:
    parts = list(path.with_suffix("").parts)[:-level]
    return ".".join(parts + [module])


def _module(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_pulp_only_in_the_model_and_the_solver_backend():
    users = sorted(str(p) for p in PLANNER.rglob("*.py")
                   if any(m == "pulp" or m.startswith("pulp.") for m, _top in _imports(p)))
    assert set(users) <= PULP_ALLOWED, users


def test_nothing_after_the_solver_imports_the_optimiser():
    for p in PLANNER.rglob("*.py"):
        if str(p).startswith(AFTER_SOLVER) or str(p) == "planner/verify.py":
            bad = [m for m, _top in _imports(p) if m.startswith("planner.optimise") or m in ("pulp", "highspy.pulp")]
            assert not bad, f"{p} imports {bad}"


def test_verify_shares_no_code_with_the_model():
    mods = {m for m, _top in _imports(PLANNER / "verify.py")}
    assert not any(m.startswith(("planner.optimise", "planner.api")) for m in mods), mods


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = defaultdict(set)
    files = {_module(p): p for p in PLANNER.rglob("*.py")}
    for mod, p in files.items():
        for imp, _top in _imports(p):
            target = imp
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != mod and target != "planner":
                graph[mod].add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(files):
        if n not in state:
            visit(n)


def test_bench_uses_the_public_interface_only():
    for p in Path("bench").glob("*.py"):
        for m, _top in _imports(p):
            assert not m.startswith(("planner.optimise", "planner.plan", "planner.derive", "pulp")), f"{p}: {m}"
