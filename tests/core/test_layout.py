"""The layout of core/ is what docs/DESIGN.md says: its table names every package and module,
no module is over about 600 lines, modules import in one direction (no cycle), and each domain
imports only what the table's "may import" column allows."""
import ast
import os
import re

from tests.helpers_scripts import ROOT

CORE = os.path.join(ROOT, "core")
MAX_LINES = 600


def _modules() -> dict[str, str]:
    """{dotted name: path} of every module under core/."""
    out = {}
    for folder, _, files in os.walk(CORE):
        if "__pycache__" in folder:
            continue
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


def _imports(module: str, path: str, known: set[str]) -> set[str]:
    """The core modules `module` imports (relative imports resolved; `from . import x` counts
    x when it is a module)."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if not target.startswith("core"):
            continue
        for alias in node.names:
            child = f"{target}.{alias.name}"
            found.add(child if child in known else target)
    return found - {module}


def _layout_rows() -> list[tuple[str, str, str]]:
    text = open(os.path.join(ROOT, "docs", "DESIGN.md"), encoding="utf-8").read()
    section = text.split("## 1. Layout", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`core/"):
            rows.append(tuple(cells))
    return rows


def test_the_design_table_names_every_package_and_module():
    named = set()
    for paths, what, _ in _layout_rows():
        for path in re.findall(r"`(core/[\w/.]*)`", paths):
            if path == "core/":
                continue  # the root's row
            if path.endswith("/"):
                # a package: its modules are the `x.py` names in the row's description
                package = path.rstrip("/").replace("/", ".")
                named.add(package)
                named.update(f"{package}.{m[:-3]}" for m in re.findall(r"`(\w+\.py)`", what))
            else:
                named.add(path[:-3].replace("/", "."))
    actual = set(_modules()) - {"core"}
    assert named == actual, (sorted(actual - named), sorted(named - actual))


def test_no_core_module_is_over_600_lines():
    long = {m: n for m, p in _modules().items()
            if (n := sum(1 for _ in open(p, encoding="utf-8"))) > MAX_LINES}
    assert not long


def test_core_modules_import_in_one_direction():
    modules = _modules()
    graph = {m: _imports(m, p, set(modules)) & set(modules) for m, p in modules.items()}
    # the importing of a package's __init__ by its own modules is not a cycle in practice,
    # but none exists here either: check the whole graph
    state = {}

    def visit(m, trail):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", " -> ".join(trail + [m])
        state[m] = "open"
        for n in sorted(graph[m]):
            visit(n, trail + [m])
        state[m] = "done"

    for m in sorted(graph):
        visit(m, [])


def test_domains_import_only_what_the_table_allows():
    allowed_by_row = {}
    for paths, _, may in _layout_rows():
        for path in re.findall(r"`(core/[\w/.]*)`", paths):
            name = path.rstrip("/").removesuffix(".py").replace("/", ".")
            allowed_by_row[name] = may
    domains = {"core.grid", "core.superres", "core.attraction", "core.terrain", "core.survey"}
    modules = _modules()
    for module, path in modules.items():
        domain = next((d for d in domains if module == d or module.startswith(d + ".")), None)
        if domain is None:
            continue
        may = allowed_by_row[domain]
        allowed = {domain, "core.errors", "core.params"}
        allowed |= {d for d in domains if f"`{d}`" in may}
        for imported in _imports(module, path, set(modules)):
            assert any(imported == a or imported.startswith(a + ".") for a in allowed), \
                (module, imported, may)
