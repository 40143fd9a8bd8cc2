"""Import hygiene: no cycle among pyro_vae's imports (inside functions too), no import running back up the layers."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pyro_vae"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> Dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(tree: ast.AST) -> Set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks (imports for annotations only, never run)."""
    skip: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def imports(name: str, path: Path, known: Set[str], source: str = "") -> Set[str]:
    """Package-internal modules that ``name`` imports anywhere: at module level and inside functions (what an
    ``if TYPE_CHECKING:`` block imports aside)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    tree = ast.parse(source or path.read_text())
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    found.add(sub)
                elif target in known:
                    found.add(target)
    found.discard(name)
    return found


def graph() -> Dict[str, Set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_imports():
    edges = graph()
    assert "pyro_vae.config.schema" in edges["pyro_vae.config.train"]
    assert "pyro_vae.models.vae" in edges["pyro_vae.models.cvae"]


def test_the_graph_sees_imports_inside_functions_but_not_type_checking_ones():
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
              "def f():\n    from .c import C\n    return C\n")
    known = {"pkg.a", "pkg.b", "pkg.c"}
    assert imports("pkg.a", Path("pkg/a.py"), known, source) == {"pkg.c"}


def test_no_import_cycle():
    """No two modules (packages' ``__init__`` included) import each other, at module level or inside a function,
    directly or around a loop."""
    found = cycles(graph())
    assert not found, f"import cycles: {found}"


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("lower, upper", [
    ("pyro_vae.config", "pyro_vae.train"), ("pyro_vae.config", "pyro_vae.models"),
    ("pyro_vae.config", "pyro_vae.run"), ("pyro_vae.models", "pyro_vae.run"), ("pyro_vae.models", "pyro_vae.cli"),
    ("pyro_vae.models", "pyro_vae.train"), ("pyro_vae.priors", "pyro_vae.models"),
    ("pyro_vae.evaluation", "pyro_vae.run"),
])
def test_no_import_runs_back_up(lower, upper):
    """A lower layer never imports a higher one (e.g. config/ does not import train/)."""
    edges = graph()
    bad = sorted(f"{m} -> {t}" for m, ts in edges.items() if m == lower or m.startswith(lower + ".")
                 for t in ts if t == upper or t.startswith(upper + "."))
    assert not bad, bad
