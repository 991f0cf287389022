"""The dependency rules of the three packages, read from the source (no imports executed).

* ``matcher`` and ``embeddings`` never import ``service``; ``matcher`` never imports
  ``embeddings`` (it types against :mod:`matcher.protocols`);
* nothing in ``service/api`` or ``service/web`` imports ``service.commands`` (the CLI), not
  even through another module;
* no import cycle among the modules of the three packages. Imports inside a function (run
  when it is called) and under ``if TYPE_CHECKING:`` (never run) are not edges of the
  import-time graph; every other import is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("matcher", "embeddings", "service")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the three packages (migrations are scripts Alembic loads by path)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "migrations" not in path.parts:
                out[_module_name(path)] = path
    return out


def _resolve(name: str) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    mods = modules()
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, top_level_only: bool) -> Iterator[str]:
    """Dotted names of the modules ``tree`` imports."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                continue
            if top_level_only and isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import):
                yield from (a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                # ``from pkg import sub`` imports the submodule ``pkg.sub``; anything else
                # is a name of the module ``pkg``.
                for a in child.names:
                    full = f"{child.module}.{a.name}"
                    yield full if full in modules() else child.module
            stack.append(child)


@cache
def edges(*, top_level_only: bool) -> dict[str, frozenset[str]]:
    """module -> the modules of ours it imports."""
    out = {}
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = {_resolve(n) for n in _imports(tree, top_level_only=top_level_only)}
        out[name] = frozenset(t for t in targets if t is not None and t != name)
    return out


def _reachable(start: str, graph: dict[str, frozenset[str]]) -> dict[str, str]:
    """Modules reachable from ``start`` -> the module that imports them on the way."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        cur = todo.pop()
        for nxt in graph.get(cur, ()):
            if nxt not in seen:
                seen[nxt] = cur
                todo.append(nxt)
    return seen


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_is_read() -> None:
    graph = edges(top_level_only=False)
    assert "service.main" in graph and "matcher.pipeline" in graph["service.api.deps"]
    assert "service.web.common" in graph["service.web.campaigns"]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("matcher", "service"), ("embeddings", "service"), ("matcher", "embeddings")],
)
def test_layers_point_one_way(package: str, forbidden: str) -> None:
    graph = edges(top_level_only=False)
    bad = sorted(
        f"{m} imports {t}"
        for m, targets in graph.items()
        if _in(m, package)
        for t in targets
        if _in(t, forbidden)
    )
    assert bad == []


@pytest.mark.parametrize("package", ["service.api", "service.web"])
def test_api_and_pages_never_reach_the_cli(package: str) -> None:
    graph = edges(top_level_only=False)
    bad = []
    for m in sorted(graph):
        if not _in(m, package):
            continue
        via = _reachable(m, graph)
        for target in sorted(t for t in via if _in(t, "service.commands")):
            chain = [target]
            while chain[-1] != m:
                chain.append(via[chain[-1]])
            bad.append(" <- ".join(chain))
    assert bad == []


def test_no_import_cycles() -> None:
    graph = edges(top_level_only=True)
    cycles = []
    for m in sorted(graph):
        via = _reachable(m, graph)
        if m in via:
            chain = [m, via[m]]
            while chain[-1] != m:
                chain.append(via[chain[-1]])
            cycles.append(" <- ".join(chain))
    assert cycles == []
