"""The house rules that keep the code findable: no import circle inside bulkapp/ (lazy imports in functions
count too), no module over 500 lines but models.py, and services/ holding only domain packages."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bulkapp"
MAX_LINES = 500


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the bulkapp modules it imports, anywhere in its body. ``from pkg import mod`` points at the
    module; importing a package's name points at its ``__init__``."""
    modules = {module_name(path, root): path for path in root.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                found = resolve(target) if target.startswith("bulkapp") else None
                if found and found != name:
                    graph[name].add(found)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_inside_bulkapp():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle(tmp_path):
    package = tmp_path / "bulkapp"
    (package / "services").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text("def f():\n    from bulkapp.services import wallet\n")
    (package / "services" / "__init__.py").write_text("")
    (package / "services" / "wallet.py").write_text("from bulkapp.models import f\n")
    assert circles(import_graph(package)) == [["bulkapp.models", "bulkapp.services.wallet"]]


def test_no_module_over_500_lines_but_models():
    long = {
        str(path.relative_to(PACKAGE.parent)): count
        for path in PACKAGE.rglob("*.py")
        if path.name != "models.py" or path.parent != PACKAGE
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_services_hold_only_domain_packages():
    services = PACKAGE / "services"
    loose = sorted(path.name for path in services.glob("*.py") if path.name != "__init__.py")
    assert loose == []
    for package in services.iterdir():
        if package.is_dir() and package.name != "__pycache__":
            init = package / "__init__.py"
            assert init.exists() and ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), package.name
