"""The seams between the packages: imports go reports -> explain -> migtrans, and across a package border only
public modules are imported; tests import public names from public places."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("migtrans", "explain", "reports")
ORDER = {"migtrans": 0, "explain": 1, "reports": 2}


def _imports(path: Path):
    """(line, imported module, imported names) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            yield node.lineno, module, tuple(alias.name for alias in node.names)


def _private(module: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in module.split("."))


def _sources(*folders):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_module_imports_a_private_module_of_another_package():
    found = []
    for path in _sources(*PACKAGES, "examples", "benchmarks"):
        own = path.relative_to(ROOT).parts[0]
        for line, module, _ in _imports(path):
            top = module.split(".")[0]
            if top in PACKAGES and top != own and _private(module):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert found == []


def test_imports_go_one_way_reports_explain_migtrans():
    found = []
    for path in _sources(*PACKAGES):
        own = path.relative_to(ROOT).parts[0]
        for line, module, _ in _imports(path):
            top = module.split(".")[0]
            if top in ORDER and ORDER[top] > ORDER[own]:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert found == []


def _public_names() -> dict:
    """name -> the public module that exports it (``__all__`` of each package and public module)."""
    out = {}
    modules = [
        "migtrans",
        "explain",
        "reports",
        "migtrans.data",
        "migtrans.model",
        "migtrans.training",
        "migtrans.simulate",
        "migtrans.validation",
        "migtrans.exceptions",
        "migtrans.utils",
        "migtrans.folds",
        "migtrans.loci",
        "migtrans.atlases",
        "migtrans.preprocess",
    ]
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for exported in getattr(module, "__all__", ()):
            out.setdefault(exported, name)
    return out


def test_tests_import_public_names_from_public_places():
    public = _public_names()
    found = []
    for path in _sources("tests"):
        for line, module, names in _imports(path):
            if module.split(".")[0] in PACKAGES and _private(module):
                for name in names:
                    if name in public:
                        found.append(f"{path.name}:{line} imports {name} from {module} (public in {public[name]})")
    assert found == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_importable(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ lists {name!r}, which it does not define"
