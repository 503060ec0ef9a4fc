"""The import direction of the model's packages (docs/ARCHITECTURE.md), checked on the source.

- ``caffemem/blobshape.py``, ``caffemem/buffers.py`` and ``caffemem/flops.py`` are leaves:
  they import nothing of caffemem;
- ``layers/`` (the rules) imports only the leaves, ``errors``, ``pb``/``caffe_pb2``,
  ``datasource`` and itself: never ``memory`` (which consumes the rules), never the net
  builder or anything above it;
- ``memory/`` imports the leaves, ``errors``, ``units``, the rules' interface and itself (it
  refuses a run Caffe dies in, e.g. ``caffe time`` on a layer with no Backward): never the net
  builder, the analysis front door or the commands;
- no module of ``layers/`` or ``memory/`` imports caffemem code inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "caffemem"

ALLOWED = {
    "blobshape": set(),
    "buffers": set(),
    "flops": set(),
    "layers": {"blobshape", "buffers", "flops", "errors", "pb", "caffe_pb2", "datasource", "layers"},
    "memory": {"blobshape", "buffers", "flops", "errors", "units", "layers", "memory"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported caffemem module, inside a function?, line) for every import of ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                names = [target] if child.module else [f"{target}.{a.name}" for a in child.names]
                out.extend((t, in_function, child.lineno) for t in names
                           if t == "caffemem" or t.startswith("caffemem."))
            elif isinstance(child, ast.Import):
                out.extend((a.name, in_function, child.lineno) for a in child.names
                           if a.name == "caffemem" or a.name.startswith("caffemem."))
            visit(child, inside)

    visit(tree, False)
    return out


def _files(area: str) -> list[Path]:
    p = ROOT / area
    return sorted(p.rglob("*.py")) if p.is_dir() else [p.with_suffix(".py")]


def _top(target: str) -> str:
    """``caffemem.layers.base`` -> ``layers``; ``caffemem.pb`` -> ``pb``."""
    parts = target.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("area", sorted(ALLOWED))
def test_imports_go_one_way(area):
    bad = [f"{f.relative_to(ROOT.parent)}:{line} imports {target}"
           for f in _files(area) for target, _, line in _imports(f)
           if _top(target) not in ALLOWED[area]]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("area", ["layers", "memory", "blobshape", "buffers", "flops"])
def test_no_function_local_caffemem_import(area):
    bad = [f"{f.relative_to(ROOT.parent)}:{line} imports {target} inside a function"
           for f in _files(area) for target, local, line in _imports(f) if local]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_function_local_and_upward_imports(tmp_path, monkeypatch):
    """The AST walk above would catch the patterns it forbids (a check that cannot fail
    proves nothing)."""
    pkg = tmp_path / "caffemem" / "layers"
    pkg.mkdir(parents=True)
    src = pkg / "toy.py"
    src.write_text("from ..blobshape import count\n"
                   "def f():\n    from ..memory.model import replay\n    return replay\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path / "caffemem")
    found = _imports(src)
    assert ("caffemem.blobshape", False, 1) in found
    assert ("caffemem.memory.model", True, 3) in found


def test_memory_keeps_no_table_of_layer_types():
    """memory/ names no layer type: what a type does is its rule's (a string literal equal
    to a registered type name would be a table entry or a special case)."""
    from caffemem.layers import known_types

    types = set(known_types())
    bad = []
    for f in _files("memory"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in types:
                bad.append(f"{f.relative_to(ROOT.parent)}:{node.lineno} names '{node.value}'")
    assert not bad, "\n".join(bad)
