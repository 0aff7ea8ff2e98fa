"""The package's import structure (shared/DESIGN.md "Layout"): dependencies point one way, and no module imports
another that (directly or through others, counting imports inside functions) imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "gazeqwen_edge"

# sub-package -> sub-packages it may import (errors.py, timing.py and the package root are leaves anyone may use)
ALLOWED = {
    "model": set(),
    "device": set(),
    "calibration": {"device"},
    "runtime": {"model", "device", "calibration", "export"},
    "export": {"model"},
    "training": {"model", "device", "calibration"},
    "profiling": {"model", "device", "calibration", "runtime", "export"},
    "voice": {"device", "runtime"},
    "cli": {"model", "device", "calibration", "runtime", "export", "training", "profiling", "voice"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (imports for type hints only never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = getattr(child, "test", None) if isinstance(child, ast.If) else None
            if test is not None and "TYPE_CHECKING" in ast.unparse(test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def import_graph() -> dict[str, set[str]]:
    """module -> the gazeqwen_edge modules it imports anywhere in its body (top level or inside functions)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if m.startswith(n + ".") or n.startswith(m + "."):  # a package and its own modules
                continue
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycles():
    """e.g. model/gazeqwen.py -> video_encoder.py -> tiny.py -> gazeqwen.py was one (through function-level imports)."""
    graph = {n: {m for m in d if not m.endswith("__init__")} for n, d in import_graph().items()}
    # package __init__ files re-export their modules; cycles through them are import-order questions, not design ones
    graph = {n: {m for m in d if m.count(".") >= 2} for n, d in graph.items() if n.count(".") >= 2}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


@pytest.mark.parametrize("sub", sorted(ALLOWED))
def test_dependencies_point_one_way(sub):
    bad = []
    for name, deps in import_graph().items():
        if not name.startswith(f"gazeqwen_edge.{sub}") or name.endswith(".__main__"):
            continue  # a `python -m` entry point stands above the layers (training/__main__ runs the CLI)
        for d in deps:
            parts = d.split(".")
            if len(parts) > 1 and parts[1] in ALLOWED and parts[1] != sub and parts[1] not in ALLOWED[sub]:
                bad.append(f"{name} imports {d}")
    assert not bad, bad
