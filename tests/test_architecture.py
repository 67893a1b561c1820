"""The code's shape, checked: imports between apps run one way, imports hide in functions only with a
reason, long modules say why they are long. See docs/architecture.md for the map these rules keep true."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def _our_apps() -> list[str]:
    """Our apps in INSTALLED_APPS order: the layers, bottom first."""
    return [app for app in settings.INSTALLED_APPS if (BASE_DIR / app.replace(".", "/")).is_dir()]


def _app_of(module: str, apps: list[str]) -> str | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in apps:
            return ".".join(parts[:n])
    return None


def _production_files(apps: list[str]) -> list[tuple[str, Path]]:
    files = []
    for app in apps:
        root = BASE_DIR / app.replace(".", "/")
        for path in root.rglob("*.py"):
            relative = path.relative_to(BASE_DIR)
            if "tests" in relative.parts or "migrations" in relative.parts:
                continue
            module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            if _app_of(module, apps) == app:
                files.append((app, path))
    return files


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, str, bool]]:
    """(node, imported module, inside a function?) for every absolute import."""
    found: list[tuple[ast.stmt, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((child, alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child, child.module, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def test_every_app_imports_only_the_apps_below_it():
    apps = _our_apps()
    layer = {app: i for i, app in enumerate(apps)}
    upward = []
    for app, path in _production_files(apps):
        for node, module, _ in _imports(ast.parse(path.read_text())):
            target = _app_of(module, apps)
            if target and target != app and layer[target] > layer[app]:
                upward.append(f"{path.relative_to(BASE_DIR)}:{node.lineno} ({app} imports {target})")
    assert not upward, "Imports against the layers (INSTALLED_APPS order, bottom first):\n" + "\n".join(upward)


def _commented(lines: list[str], index: int) -> bool:
    """A comment on the import's line, or anywhere in the run of imports (and blank lines) it belongs to,
    or on the line just above that run."""
    i = index
    while i >= 0:
        line = lines[i].strip()
        if "#" in line:
            return True
        if line and not line.startswith(("import ", "from ", ")")) and not line.endswith(","):
            return False
        i -= 1
    return False


def test_an_import_inside_a_function_says_why():
    silent = []
    for _, path in _production_files(_our_apps()):
        lines = path.read_text().splitlines()
        for node, module, in_function in _imports(ast.parse("\n".join(lines))):
            if not in_function:
                continue
            if not _commented(lines, node.lineno - 1):
                silent.append(f"{path.relative_to(BASE_DIR)}:{node.lineno} imports {module}")
    assert not silent, "Imports inside functions need a comment saying why:\n" + "\n".join(silent)


def test_a_module_over_400_lines_says_why_in_its_docstring():
    long_and_silent = []
    for _, path in _production_files(_our_apps()):
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if "why" not in docstring.lower() and "one module" not in docstring.lower():
                long_and_silent.append(f"{path.relative_to(BASE_DIR)} ({text.count(chr(10))} lines)")
    assert not long_and_silent, "Say in the module docstring why these are one module:\n" + "\n".join(long_and_silent)


def test_the_layer_order_itself_is_what_the_map_documents():
    documented = (BASE_DIR / "docs" / "architecture.md").read_text()
    assert " → ".join(reversed(_our_apps())) in documented


def test_make_test_collects_every_apps_tests():
    """`make test` runs pytest without paths, so it collects `testpaths` only: an app left out of it has
    tests that never run (privacy, usage and webhooks were)."""
    testpaths = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    with_tests = {str(d.parent.relative_to(BASE_DIR)) for d in BASE_DIR.glob("*/tests") if (d / "__init__.py").exists()}
    with_tests |= {str(d.relative_to(BASE_DIR)) for d in [BASE_DIR / "tests"] if d.is_dir()}
    missed = sorted(d for d in with_tests if not any(d == p or d.startswith(p + "/") for p in testpaths))
    assert not missed, f"Add these to testpaths in pyproject.toml, or their tests never run: {missed}"
