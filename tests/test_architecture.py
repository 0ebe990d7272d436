"""The library's shape: no import cycles between its modules, and no long module without a reason."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "mlray"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(LIBRARY.rglob("*.py"))}


def top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Library modules imported when ``path`` is imported: module-level statements, outside
    ``if TYPE_CHECKING`` blocks (imports inside functions run later and cannot form a cycle at import)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        statements = node.body + node.orelse if isinstance(node, (ast.If, ast.Try)) else [node]
        for statement in statements:
            if isinstance(statement, ast.Import):
                names = [alias.name for alias in statement.names]
            elif isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
                names = [statement.module] + [f"{statement.module}.{alias.name}" for alias in statement.names]
            else:
                continue
            found.update(name for name in names if name in known)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_library_modules():
    known = modules()
    graph = {name: top_level_imports(path, set(known)) - {name} for name, path in known.items()}
    # A package's __init__ importing its own submodules is how packages export names, not a cycle of code.
    for name in graph:
        graph[name] = {target for target in graph[name] if not target.startswith(name + ".")}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_long_modules_say_why():
    unexplained = []
    for name, path in modules().items():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and not any(line.startswith("Length:") for line in docstring.splitlines()):
            unexplained.append(f"{name}: {lines} lines")
    assert unexplained == [], f"over {MAX_LINES} lines without a 'Length:' reason in the module docstring"
