"""No stochmech module imports another stochmech module's private (underscore) names.

Shared helpers live in package-shared modules whose own name starts with an underscore
(``stochmech._validate``, ``stochmech._state``, ...): importing those modules, or the names they
define, is allowed; so is the native module ``stochmech._core``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stochmech

ROOT = Path(stochmech.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _shared(module: str) -> bool:
    """A package-shared module: its last dotted part starts with an underscore."""
    return module.split(".")[-1].startswith("_")


def private_imports(root: Path = ROOT) -> list[str]:
    """Every import of another stochmech module's private name under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root).as_posix()
        current = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules = _imported_modules(tree, root)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(current, path.name == "__init__.py", node)
                if not (source == "stochmech" or source.startswith("stochmech.")):
                    continue
                if source == current or _shared(source):
                    continue
                for alias in node.names:
                    name = alias.name
                    if not name.startswith("_") or name.startswith("__"):
                        continue
                    if root.joinpath(*source.split(".")[1:], f"{name}.py").exists():
                        continue  # a package-shared module (or the native one), as a module
                    if source == "stochmech" and name == "_core":
                        continue
                    found.append(f"{where}:{node.lineno}: {source}.{name}")
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                # private attribute access through an imported (non-shared) module object
                module = modules.get(node.value.id)
                attr = node.attr
                if module and attr.startswith("_") and not attr.startswith("__"):
                    if not _shared(module):
                        found.append(f"{where}:{node.lineno}: {module}.{attr}")
    return found


def _imported_modules(tree: ast.Module, root: Path) -> dict[str, str]:
    """Local names bound to stochmech modules by ``import ... as`` / ``from stochmech import m``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("stochmech.") and alias.asname:
                    names[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "stochmech" or node.module.startswith("stochmech."):
                for alias in node.names:
                    sub = root.joinpath(*node.module.split(".")[1:], alias.name)
                    if sub.with_suffix(".py").exists() or (sub / "__init__.py").exists():
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def test_no_module_imports_another_modules_private_names() -> None:
    assert private_imports() == []


def test_the_scan_finds_a_private_import(tmp_path: Path) -> None:
    pkg = tmp_path / "stochmech"
    (pkg / "audit").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_validate.py").write_text("def pmf(): ...\n_X = 1\n")
    (pkg / "ledger.py").write_text("def _helper(): ...\n")
    (pkg / "audit" / "__init__.py").write_text("")
    (pkg / "audit" / "risk.py").write_text(
        "from stochmech._validate import pmf, _X\n"
        "from stochmech import _core, ledger\n"
        "from stochmech.ledger import _helper\n"
        "from ..ledger import _helper as h\n"
        "ledger._helper()\n"
    )
    assert private_imports(pkg) == [
        "audit/risk.py:3: stochmech.ledger._helper",
        "audit/risk.py:4: stochmech.ledger._helper",
        "audit/risk.py:5: stochmech.ledger._helper",
    ]
