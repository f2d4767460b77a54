"""The package's import graph stays clean: no cycles between modules, no imports hidden inside
functions (except optional heavy dependencies), no private names imported across packages.

Walks the source with ``ast`` (nothing is imported), so a violation is reported with its file and
line even when it would only bite at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "pixelwise"

# Imported inside functions on purpose: slow to import and needed only by one code path
# (sample photos, plotting, MATLAB files, the dense-CRF extension, scikit-learn's baseline).
LAZY_OK = {"skimage", "sklearn", "matplotlib", "h5py", "pydensecrf", "pydensecrf2"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path):
    """(line, target module, imported name or None, inside a function?) for every import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    out.append((child.lineno, alias.name, None, in_function))
            elif isinstance(child, ast.ImportFrom):
                target = resolve(name, is_package, child)
                for alias in child.names:
                    out.append((child.lineno, target, alias.name, in_function))
            visit(child, nested)

    visit(tree, False)
    return out


def edges() -> dict[str, set[str]]:
    modules = all_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for _, target, imported, _ in imports_of(name, path):
            if not target.startswith("pixelwise"):
                continue
            full = f"{target}.{imported}" if imported else target
            graph[name].add(full if full in modules else target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                connect(w)
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
            if len(comp) > 1 or v in graph.get(v, ()):
                comps.append(sorted(comp))

    for v in graph:
        if v not in index:
            connect(v)
    return comps


def test_no_import_cycles_between_modules():
    cycles = strongly_connected(edges())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_cycles():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_imports_inside_functions_except_optional_heavy_dependencies():
    bad = []
    for name, path in all_modules().items():
        for line, target, _, inside in imports_of(name, path):
            if inside and target.split(".")[0] not in LAZY_OK:
                bad.append(f"{path.relative_to(SRC)}:{line}: {target}")
    assert not bad, f"{len(bad)} import(s) inside functions:\n" + "\n".join(bad)


def test_no_private_names_imported_across_packages():
    modules = all_modules()
    bad = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for line, target, imported, _ in imports_of(name, path):
            if not target.startswith("pixelwise"):
                continue
            full = f"{target}.{imported}" if imported and f"{target}.{imported}" in modules else target
            owner = full if full in modules and modules[full].name == "__init__.py" else full.rsplit(".", 1)[0]
            private_module = any(part.startswith("_") and part != "__init__" for part in full.split("."))
            private_name = (bool(imported) and imported.startswith("_") and not imported.endswith("__")
                            and full == target)
            if (private_module or private_name) and owner != package:
                bad.append(f"{path.relative_to(SRC)}:{line}: {target} import {imported}")
    assert not bad, "private names imported across packages:\n" + "\n".join(bad)
