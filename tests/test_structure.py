"""The package stays readable top-down: small modules, no import cycle, layers that only import downward.

Every ``unigrad/**/*.py`` is parsed with ``ast`` (nothing is imported, so no framework is needed).
An import counts wherever it is written: at module level, inside a function (a lazy import of a
module that imports you back is still a cycle in the reading order), under ``TYPE_CHECKING``.
Imports by name at run time (``importlib.import_module("unigrad.backends._torch")``, how the registry
loads an adapter) are not seen. docs/design.md explains the layers.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "unigrad"
MAX_LINES = 400

#: The layers, bottom to top, by module name under ``unigrad.`` (``__init__``: ``unigrad`` itself): a
#: module may import its own layer and the ones below, never one above. A module belongs to the layer
#: of the longest name that is it or a package holding it. See docs/design.md, "Layers".
LAYER_TABLE = [
    ("errors", "_errors"),
    ("tree", "_tree"),
    ("backends", "backends"),
    ("core", "_precision _leaves _plan _validate _dispatch _loss _complex _host"),
    (
        "api",
        "__init__ _api _matching _transforms _reusable _compiled _compiled_by_structure _compiled_hvp "
        "_convert _namespace distributed",
    ),
    ("checks", "conformance fuzz distributed._launch distributed._job distributed._worker distributed.cases"),
    ("testing", "testing pytest_plugin"),
    ("cli", "cli __main__ demo"),
]
LAYERS = [
    (layer, tuple("unigrad" if name == "__init__" else f"unigrad.{name}" for name in names.split()))
    for layer, names in LAYER_TABLE
]

# Modules allowed over MAX_LINES and packages allowed a cycle, each with its reason: empty, and to be
# kept so (split the module, or move the shared piece down, instead of adding to them).
LONG_MODULES_BEING_SPLIT: dict[str, str] = {}
CYCLES_BEING_SPLIT: dict[str, str] = {}


@cache
def modules() -> dict[str, Path]:
    """Module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _module_of(name: str) -> str | None:
    """The package module ``name`` is, or is in: ``unigrad.backends.get_adapter`` -> ``unigrad.backends``."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(source: str, module: str, is_package: bool = False) -> set[tuple[str, int]]:
    """``(imported module, line)`` for every import of a package module written in ``source``."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source_name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source_name = node.module or ""
            # `from unigrad import _tree` imports module unigrad._tree; `from unigrad import grad`, unigrad.
            names = [f"{source_name}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _module_of(name) if name.split(".")[0] == "unigrad" else None
            if target is not None and target != module:
                found.add((target, node.lineno))
    return found


@cache
def imports(module: str) -> tuple[tuple[str, int], ...]:
    """``(imported module, line)`` for every import of a package module in ``module``'s file."""
    path = modules()[module]
    source = path.read_text(encoding="utf-8")
    return tuple(sorted(imported_modules(source, module, path.name == "__init__.py")))


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module``'s layer (``None``: no prefix names it)."""
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            names_it = module == prefix or (prefix != "unigrad" and module.startswith(prefix + "."))
            if names_it and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def cycles(graph: dict[str, list[str]]) -> Iterator[list[str]]:
    """One cycle through each strongly connected group of ``graph`` (Tarjan), as a path a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(start: str) -> None:  # iterative, so deep chains never hit the recursion limit
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(set(group))

    for module in graph:
        if module not in index:
            visit(module)
    for group in groups:
        start = min(group)
        paths = {start: [start]}  # breadth first, inside the group: the shortest way back to start
        frontier = [start]
        while frontier:
            following = []
            for node in frontier:
                for target in graph[node]:
                    if target == start:
                        yield [*paths[node], start]
                        following = []
                        break
                    if target in group and target not in paths:
                        paths[target] = [*paths[node], target]
                        following.append(target)
                else:
                    continue
                break
            frontier = following


def _line_of(module: str, target: str) -> int:
    return min(line for imported, line in imports(module) if imported == target)


def test_every_module_is_at_most_400_lines() -> None:
    too_long = {
        module: len(path.read_text(encoding="utf-8").splitlines())
        for module, path in modules().items()
        if module not in LONG_MODULES_BEING_SPLIT
    }
    offenders = [
        f"{modules()[m].relative_to(PACKAGE.parent)}: {n} lines" for m, n in too_long.items() if n > MAX_LINES
    ]
    assert not offenders, f"modules over {MAX_LINES} lines (one module, one job: split them):\n" + "\n".join(
        offenders
    )


def test_no_import_cycle() -> None:
    graph = {module: sorted({target for target, _ in imports(module)}) for module in modules()}
    found = []
    for cycle in cycles(graph):
        if any(all(m == p or m.startswith(p + ".") for m in cycle) for p in CYCLES_BEING_SPLIT):
            continue
        steps = [cycle[0]] + [f"{b} (line {_line_of(a, b)} of {a})" for a, b in itertools.pairwise(cycle)]
        found.append(" -> ".join(steps))
    assert not found, "import cycles (move the shared piece down into a module of its own):\n" + "\n".join(
        found
    )


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(module for module in modules() if layer_of(module) is None)
    assert not unplaced, f"modules in no layer of LAYERS (add them where they belong): {unplaced}"


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = []
    for module in modules():
        own = layer_of(module)
        for target, line in imports(module):
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(
                    f"{module} ({LAYERS[own][0]}) imports {target} ({LAYERS[theirs][0]}) at line {line}"
                )
    assert not upward, "imports from a higher layer (move what is needed down):\n" + "\n".join(upward)


def test_the_checks_see_lazy_imports_cycles_and_layers() -> None:
    source = (
        "import numpy\n"
        "from unigrad import _tree, grad\n"
        "def lazy():\n"
        "    from unigrad.conformance import runner\n"
        "    import unigrad.backends._torch\n"
    )
    assert imported_modules(source, "unigrad.conformance.isolated") == {
        ("unigrad._tree", 2),
        ("unigrad", 2),
        ("unigrad.conformance.runner", 4),
        ("unigrad.backends._torch", 5),
    }
    assert list(cycles({"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": []})) == [["a", "b", "c", "a"]]
    assert list(cycles({"a": ["b"], "b": []})) == []
    assert layer_of("unigrad") == layer_of("unigrad._api")
    assert layer_of("unigrad._tree") == 1 and layer_of("unigrad.backends._torch") == 2
    assert layer_of("unigrad.distributed._launch") == layer_of("unigrad.conformance.runner")
    assert layer_of("unigrad.cli._check") == len(LAYERS) - 1
