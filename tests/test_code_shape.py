"""The code's shape: the layers point down (`baselines` -> `luma` -> `luma_builders`; only the command line,
`luma_builders.cli`, imports all three), nobody imports another package's private names (every import counts, also
inside functions), and no function is over 50 lines."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMAND_LINE = "luma_builders.cli"
# what each layer may import of the project's own packages
ALLOWED = {
    "luma_builders": {"luma_builders"},
    "luma": {"luma", "luma_builders"},
    "baselines": {"baselines", "luma", "luma_builders"},
}


def modules() -> dict[str, Path]:
    found = {"luma": ROOT / "luma.py"}
    for package in ("luma_builders", "baselines"):
        for path in (ROOT / package).rglob("*.py"):
            found[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return found


def imports(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of `path`, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.append((base, [alias.name for alias in node.names], node.lineno))
    return found


def layer(module: str) -> str:
    return module.split(".")[0]


def project_imports():
    for module, path in modules().items():
        for imported, names, line in imports(module, path):
            if layer(imported) in ALLOWED:
                yield module, path, imported, names, line


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down(module):
    if module == COMMAND_LINE:
        return  # the one module that wires every layer together
    path = modules()[module]
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for imported, _names, line in imports(module, path)
        if layer(imported) in ALLOWED and layer(imported) not in ALLOWED[layer(module)]
    ]
    assert upward == []


def test_no_private_name_of_another_package_is_imported():
    private = [
        f"{path.relative_to(ROOT)}:{line} takes {name} from {imported}"
        for module, path, imported, names, line in project_imports()
        for name in names
        if name.startswith("_") and not name.startswith("__") and layer(imported) != layer(module)
    ]
    assert private == []


def test_the_import_walk_sees_relative_and_nested_imports():
    # the walk itself must find what it polices: a relative import and one inside a function
    found = imports("luma_builders.cli", modules()["luma_builders.cli"])
    assert any(imported == "luma_builders.sources.transfer" for imported, _, _ in found)
    assert any(layer(imported) == "baselines" for imported, _, _ in found)


MAX_FUNCTION_LINES = 50


def test_no_function_is_over_50_lines():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
