"""The house rules of docs/architecture.md, checked on the code itself.

Imports run one way through the layers, with no cycle; SQL (SQLAlchemy) lives
only in catalog/; no module reaches into the facade's private names; modules
stay under 800 lines; every public definition has a docstring. The import
graph is read from the source with ``ast`` (function-level imports count,
``if TYPE_CHECKING:`` imports do not: they are for type checkers only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "limnos"

# Lower layers never import higher ones. Features (rank 4) may import each other, without cycles.
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("limnos.errors", "limnos.names", "limnos.progress", "limnos.render_html", "limnos.times", "limnos.version")),
    (1, ("limnos.store",)),
    (2, ("limnos.catalog",)),
    (3, ("limnos.core",)),
    (4, ("limnos.ops", "limnos.steps", "limnos.datasources", "limnos.folio")),
    (5, ("limnos.lake",)),
    (6, ("limnos.tracking", "limnos.web", "limnos.fs")),
    (7, ("limnos.cli", "limnos.__main__")),
]
TOP = 8  # the package itself: ``limnos/__init__.py`` loads any of them lazily

# Imports that run up the layers on purpose, each explained in docs/architecture.md.
ALLOWED_UPWARD_PREFIXES: set[tuple[str, str]] = {
    ("limnos.cli", "limnos"),  # the CLI (and its demo) uses the public package namespace, as users do
    # lake.ui() and ds.visualize() start the web app, which never imports them back at run time (no cycle)
    ("limnos.lake", "limnos.web"),
    ("limnos.datasources.source", "limnos.web"),
}


def allowed_upward(src: str, dst: str) -> bool:
    return any((src == s or src.startswith(s + ".")) and dst == d for s, d in ALLOWED_UPWARD_PREFIXES)


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def rank(module: str) -> int:
    for level, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    assert module == "limnos", f"{module} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return TOP


def runtime_imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The limnos modules ``name`` imports at run time (anywhere in the file, not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module itself
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in child.names]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: runtime_imports(path, name, known) for name, path in known.items()}


def test_imports_run_down_the_layers() -> None:
    wrong = sorted(
        f"{src} (layer {rank(src)}) imports {dst} (layer {rank(dst)})"
        for src, targets in graph().items()
        for dst in targets
        if rank(dst) > rank(src) and not allowed_upward(src, dst)
    )
    assert not wrong, "imports that run up the layers:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    edges = {src: {d for d in dsts if d != "limnos"} for src, dsts in graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            strongconnect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_sql_lives_only_in_the_catalog() -> None:
    offenders = []
    for name, path in modules().items():
        if name.startswith("limnos.catalog"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(m == "sqlalchemy" or m.startswith("sqlalchemy.") for m in mods):
                offenders.append(name)
    assert not offenders, f"SQLAlchemy imported outside catalog/: {sorted(set(offenders))}"


def test_no_feature_reaches_into_private_lake_names() -> None:
    offenders = [name for name, path in modules().items()
                 if name != "limnos.lake" and "lake._" in path.read_text(encoding="utf-8")]
    assert not offenders, f"'lake._' outside lake.py: {offenders}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_size(name: str) -> None:
    lines = modules()[name].read_text(encoding="utf-8").count("\n")
    assert lines <= 800, f"{name} has {lines} lines; split it (house rule: at most 800)"


def public_definitions(tree: ast.Module) -> list[tuple[str, ast.AST]]:
    """Public classes and functions at module level, and public methods of public classes."""
    out: list[tuple[str, ast.AST]] = []
    for node in tree.body:
        is_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if is_function and "overload" in {ast.unparse(d) for d in node.decorator_list}:
            continue  # the implementation after the overloads carries the docstring
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            out.append((node.name, node))
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
                        decorators = {ast.unparse(d) for d in item.decorator_list}
                        if any(d.endswith((".setter", ".deleter")) or d == "overload" for d in decorators):
                            continue
                        out.append((f"{node.name}.{item.name}", item))
    return out


def test_every_public_definition_has_a_docstring() -> None:
    missing = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for qualname, node in public_definitions(tree):
            if not ast.get_docstring(node):  # type: ignore[arg-type]
                missing.append(f"{name}.{qualname}")
    assert not missing, f"{len(missing)} public definitions without a docstring:\n" + "\n".join(missing)


def test_library_errors_speak_python() -> None:
    """Errors raised below the CLI give Python advice; the CLI turns it into commands (cli/advice.py)."""
    shell = []
    for name, path in modules().items():
        if name.startswith("limnos.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = " ".join(c.value for c in ast.walk(node.exc) if isinstance(c, ast.Constant) and isinstance(c.value, str))
                if "'limnos " in text or "`limnos " in text:
                    shell.append(f"{name}:{node.lineno}: {text[:100]}")
    assert not shell, "library errors that give shell advice:\n" + "\n".join(shell)
