"""The package's import graph: no cycles (function-level imports included, so none can hide
behind one) and the dependency direction of the layout (tests/test_cli.py checks that
`import gitool.cli` leaves torch out)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "gitool"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _target(name: str) -> str | None:
    """The gitool module an import names (a submodule when it is one, else its package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(module: str) -> set[str]:
    """Every gitool module ``module`` imports, at any depth of its code (not under
    ``if TYPE_CHECKING``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from gitool.x import y``: the submodule gitool.x.y when y is one, else gitool.x
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for name in names:
            target = _target(name) if name.startswith("gitool") else None
            if target and target != module:
                found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour = dict.fromkeys(graph, 0)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if colour.get(nxt) == 0 and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if colour[node] == 0 and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_the_cycle_finder_finds_a_hidden_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_are_resolved_to_modules():
    # A function-level import counts: the evaluate command module reaches the library.
    assert "gitool.evaluate.coverage" in GRAPH["gitool.cli.evaluate"]
    assert "gitool.runs" in GRAPH["gitool.predict.inference"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("gitool.models")))
def test_models_do_no_io(module):
    """Models import only other model modules and the error types: no files, stores or
    console (the layout's rule: models are free of I/O)."""
    allowed = {"gitool.errors"}
    outside = {m for m in GRAPH[module] if not m.startswith("gitool.models") and m not in allowed}
    assert not outside, f"{module} imports {sorted(outside)}"


def test_nothing_imports_the_cli():
    users = {
        m for m, deps in GRAPH.items() if not m.startswith("gitool.cli") and m != "gitool.__main__"
    }
    offenders = {m for m in users if any(d.startswith("gitool.cli") for d in GRAPH[m])}
    assert not offenders, f"library modules import the CLI: {sorted(offenders)}"
