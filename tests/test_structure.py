"""The package's shape: every function fits on a screen, and imports go one way (no cycle,
imports inside functions included)."""

import ast
from pathlib import Path

import ganx

PACKAGE = Path(next(iter(ganx.__path__))).resolve()  # a namespace package: no __init__.py
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), filename=str(path))
    return out


def imported_modules(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The ganx modules ``name`` imports anywhere in its file (``from .x import y`` counts x,
    and x.y when that is a module)."""
    is_package = (PACKAGE / Path(*name.split(".")[1:]) / "__init__.py").is_file()
    package = name if is_package else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    trees = modules()
    return {name: imported_modules(name, tree, set(trees)) for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def test_no_function_is_longer_than_a_screen():
    long = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines >= MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None, find_cycle(import_graph())


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_loop_depends_one_way():
    """entry -> launch -> loop -> step/state/outputs/schedule -> parts; nothing below the loop
    imports it, and the step knows nothing of state, outputs or the schedule."""
    graph = import_graph()
    assert "ganx.loop" in graph["ganx.train"] and "ganx.launch" in graph["ganx.train"]
    assert {"ganx.step", "ganx.state", "ganx.outputs", "ganx.schedule"} <= graph["ganx.loop"]
    for module in (
        "ganx.step",
        "ganx.state",
        "ganx.outputs",
        "ganx.schedule",
        "ganx.metrics.evaluation",
    ):
        assert not graph[module] & {"ganx.loop", "ganx.launch", "ganx.train"}, module
    assert not graph["ganx.step"] & {"ganx.state", "ganx.outputs", "ganx.schedule"}
    assert not graph["ganx.collectives"] & {"ganx.launch", "ganx.loop"}


def test_the_commands_sit_on_top():
    """ganx/commands/ holds the console commands: below them nothing imports them, except the
    other two entry modules (ganx-train's ``ganx.train`` and ganx-dirac's study, whose ``main``
    is a command too), for ``--version`` and the report's markdown table."""
    entries = {"ganx.train", "ganx.dirac_study"}
    for module, imports in import_graph().items():
        if not module.startswith("ganx.commands") and module not in entries:
            assert not {m for m in imports if m.startswith("ganx.commands")}, module


def test_the_metrics_know_nothing_of_training():
    graph = import_graph()
    training = {"ganx.loop", "ganx.launch", "ganx.train", "ganx.state", "ganx.outputs"}
    for module in (m for m in graph if m.startswith("ganx.metrics")):
        assert not graph[module] & (training | {"ganx.step", "ganx.build"}), module


def test_errors_are_imported_from_errors_py():
    """An error class is imported from ganx.errors, never through another module."""
    trees = modules()
    defined = {node.name for node in trees["ganx.errors"].body if isinstance(node, ast.ClassDef)}
    wrong = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").rsplit(".", 1)[-1] != (
                "errors"
            ):
                wrong += [f"{name}: {a.name}" for a in node.names if a.name in defined]
    assert not wrong, wrong
