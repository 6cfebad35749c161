"""The layering that docs/architecture.md declares, enforced: no import cycle in distgan/, and no import from a lower
layer into a higher one. Every import counts, at module level, inside functions and under TYPE_CHECKING, read with
`ast` (nothing is imported). The layer order is written once, in the ```layers block of docs/architecture.md."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "distgan"
ARCHITECTURE = REPO / "docs" / "architecture.md"


def declared_layers(text: str) -> dict[str, int]:
    """{top-level module or package: its layer's rank, 0 the bottom} from the ```layers block of `text`."""
    block = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M)
    assert block, f"{ARCHITECTURE}: no ```layers block"
    ranks: dict[str, int] = {}
    for rank, line in enumerate(line for line in block.group(1).splitlines() if line.split("#")[0].strip()):
        for name in line.split("#")[0].split():
            assert name not in ranks, f"{ARCHITECTURE}: {name} is in two layers"
            ranks[name] = rank
    return ranks


def module_files(package: Path) -> dict[str, Path]:
    """{dotted module name: file} of every module of the package, packages by their __init__.py."""
    modules = {}
    for file in package.rglob("*.py"):
        parts = list(file.relative_to(package.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return modules


def imports_of(name: str, file: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module of the package, line) for every import statement of the module, wherever it stands."""
    base = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                anchor = base
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                source = f"{anchor}.{node.module}" if node.module else anchor
            targets = [f"{source}.{alias.name}" for alias in node.names]  # `from pkg import module` names a module
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `from m import function`: the module m
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, node.lineno))
    return list(dict.fromkeys(found))  # `from m import a, b`: one import of m


def import_graph(package: Path) -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    modules = module_files(package)
    return modules, {name: imports_of(name, file, modules) for name, file in modules.items()}


def layer_violations(package: Path, ranks: dict[str, int]) -> list[str]:
    """Each import of a higher layer (or of a module no layer lists), as 'file:line: a imports b (why)'."""
    modules, graph = import_graph(package)
    root = package.name
    problems = []
    for name, edges in sorted(graph.items()):
        where = modules[name].relative_to(package.parent)
        if name == root:
            problems += [f"{where}:{line}: {root}/__init__.py imports {target}" for target, line in edges]
            continue
        top = name.split(".")[1]
        if top not in ranks:
            problems.append(f"{where}: {root}.{top} is in no layer of {ARCHITECTURE.name}")
            continue
        for target, line in edges:
            target_top = target.split(".")[1] if target != root else root
            if target_top in ranks and ranks[target_top] > ranks[top]:
                problems.append(f"{where}:{line}: {name} imports {target} (layer {target_top} is above {top})")
    return problems


def import_cycles(package: Path) -> list[str]:
    """Every cycle of the import graph (one per strongly connected component), as 'a -> b (line n) -> ... -> a'."""
    modules, graph = import_graph(package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target, _ in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            components.append([node, *component])

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_through(sorted(c), graph) for c in components if len(c) > 1]


def _cycle_through(component: list[str], graph: dict[str, list[tuple[str, int]]]) -> str:
    """One cycle within a strongly connected component, from its first module, with the import line of each step."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first: the shortest way back to start
        node = frontier.pop(0)
        for target, line in graph[node]:
            step = f"{target} (line {line} of {node})"
            if target == start:
                return " -> ".join([*paths[node], step])
            if target in members and target not in paths:
                paths[target] = [*paths[node], step]
                frontier.append(target)
    raise AssertionError(f"no cycle through {component}")


def test_no_import_cycle_in_the_package():
    cycles = import_cycles(PACKAGE)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_imports_a_higher_layer():
    problems = layer_violations(PACKAGE, declared_layers(ARCHITECTURE.read_text()))
    assert not problems, "imports against the layer order of docs/architecture.md:\n" + "\n".join(problems)


def test_the_config_is_a_leaf():
    """config.py imports nothing of distgan above runtime/ (the bottom layer, errors and its neighbours, and runtime/
    only), and is at most 300 lines."""
    ranks = declared_layers(ARCHITECTURE.read_text())
    _, graph = import_graph(PACKAGE)
    above_runtime = [target for target, _ in graph["distgan.config"] if ranks[target.split(".")[1]] > ranks["runtime"]]
    assert above_runtime == []
    assert len((PACKAGE / "config.py").read_text().splitlines()) <= 300


def test_the_guard_finds_a_cycle_and_an_upward_import(tmp_path):
    """The checks themselves, on a package made for it: a cycle through an import inside a function and one under
    TYPE_CHECKING, a relative import, and a low layer importing a high one."""
    package = tmp_path / "pkg"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text("def f():\n    from pkg.low import b\n")
    (package / "low" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n")
    (package / "high.py").write_text("import pkg.low.a\n")
    (package / "low" / "c.py").write_text("from pkg.high import x\n")
    assert import_cycles(package) == ["pkg.low.a -> pkg.low.b (line 2 of pkg.low.a) -> pkg.low.a (line 3 of pkg.low.b)"]
    assert layer_violations(package, {"low": 0, "high": 1}) == [
        "pkg/low/c.py:1: pkg.low.c imports pkg.high (layer high is above low)"
    ]
    assert layer_violations(package, {"low": 0}) == ["pkg/high.py: pkg.high is in no layer of architecture.md"]
