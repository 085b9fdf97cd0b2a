"""linjax's import graph: no cycles, no upward imports, function-local imports only where listed.

Reads every import in `linjax/` with `ast` (module level, inside functions and inside
classes; `import a.b`, `from a import b`, `from . import b`), without importing linjax, and
checks them against the layer table of docs/architecture.md (`LAYERS` below, bottom first):
a module may import its own layer and the layers below it, never one above. Cycles are
counted on the graph that Python runs: besides the explicit imports, importing `linjax.P.m`
from outside the subpackage `linjax.P` first runs `linjax/P/__init__.py`.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "linjax"

#: The layer table (docs/architecture.md), bottom first. An entry ending in ".*" is a
#: subpackage: its __init__ and every module in it not named elsewhere in the table.
LAYERS = [
    ("base", ["linjax._pytree", "linjax._programs", "linjax._cache", "linjax.buckets",
              "linjax.solvers.status", "linjax.solvers.linalg", "linjax.solvers.gram",
              "linjax.solvers.newton_step",
              "linjax.special",
              "linjax.datasets", "linjax.plotting"]),
    ("vocabulary", ["linjax.links", "linjax.penalties", "linjax.families", "linjax.summary",
                    "linjax.result", "linjax.sample_weights", "linjax.estimability",
                    "linjax.transforms", "linjax.designs.types",
                    "linjax.designs.sparse_kernels"]),
    ("checks", ["linjax.validation", "linjax.model", "linjax.solvers._common",
                "linjax.batch_checks"]),
    ("solvers", ["linjax.solvers.problem", "linjax.solvers.engine", "linjax.solvers.newton",
                 "linjax.solvers.coordinate", "linjax.solvers.gradient", "linjax.solvers.lbfgs",
                 "linjax.solvers.newton_cg",
                 "linjax.solvers.design_gradient",
                 "linjax.solvers.lstsq", "linjax.solvers.projected", "linjax.solvers.proximal",
                 "linjax.solvers", "linjax.implicit", "linjax.solver_choice", "linjax.starting",
                 "linjax.designs.*", "linjax.inputs"]),
    ("statistics", ["linjax.fit_statistics", "linjax.hypothesis", "linjax.inference",
                    "linjax.diagnostics", "linjax.separation"]),
    ("variants", ["linjax.firth", "linjax.nb", "linjax.dispersion"]),
    ("fit", ["linjax.fit", "linjax.tuning"]),
    ("entry points", ["linjax.scale.*", "linjax.paths", "linjax.paths_lockstep",
                      "linjax.selection",
                      "linjax.expression", "linjax.designs.formula"]),
    ("estimators", ["linjax.estimators.*", "linjax.preprocessing"]),
    ("applications", ["linjax.io", "linjax.cli_model", "linjax.cli", "linjax.demo",
                      "linjax.__main__", "linjax"]),
]

#: Function-local imports of linjax modules that stay local, each with its reason.
LOCAL_IMPORTS_ALLOWED = {
    ("linjax.preprocessing", "linjax.estimators"): "the transformers need scikit-learn",
    ("linjax.io", "linjax.estimators"): "only a saved estimator needs scikit-learn",
}


#: Imports that break the rules and are not fixed yet, each with its fix. They are left out
#: of the checks below; `test_known_violations_are_still_there` fails once one is gone, so
#: that its entry goes too (the table only shrinks).
KNOWN_VIOLATIONS = {}


def module_files():
    """{module name: (path, is_package)} for every .py file under linjax/."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def _owner(name, modules):
    """The module that `name` (a module or a name inside one) lives in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def lazy_names(modules):
    """{package: {name: module}} for a package whose __init__ loads its names lazily from a
    `LAZY_NAMES = {name: submodule}` table (PEP 562 `__getattr__`): `from package import
    name` then runs that submodule, which the graph must see."""
    out = {}
    for module, (path, is_package) in modules.items():
        if not is_package:
            continue
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and getattr(node.targets[0], "id", None) == "LAZY_NAMES"):
                table = ast.literal_eval(node.value)
                out[module] = {name: f"{module}.{sub}" for name, sub in table.items()}
    return out


def imports(modules):
    """[(importer, imported module, line, function-local)] for every linjax import."""
    found = []
    lazy = lazy_names(modules)
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        local = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                local.update(id(n) for n in ast.walk(node) if n is not node)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from a import b` imports the module a.b where b is one, else a (or the
                # module that a's lazy table loads b from)
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                           else lazy.get(source, {}).get(alias.name, source)
                           for alias in node.names]
            else:
                continue
            for target in targets:
                if target != "linjax" and not target.startswith("linjax."):
                    continue
                imported = _owner(target, modules)
                if imported and imported != module:
                    found.append((module, imported, node.lineno, id(node) in local))
    return found


def layer_of(modules):
    """{module: (layer index, layer name)}; every module must be in the table."""
    index = {}
    for patterns in (False, True):  # named modules first, then the rest of a subpackage
        for i, (name, entries) in enumerate(LAYERS):
            for entry in entries:
                if entry.endswith(".*") != patterns:
                    continue
                package = entry[:-2] if patterns else entry
                members = [m for m in modules if m == package or
                           (patterns and m.startswith(package + "."))]
                for m in members:
                    index.setdefault(m, (i, name))
    return index


def runtime_edges(modules, found):
    """Explicit imports plus the subpackage __init__ that importing a submodule runs."""
    edges = {m: set() for m in modules}
    for importer, imported, _, _ in found:
        if imported not in modules:
            continue
        edges[importer].add(imported)
        parts = imported.split(".")
        for k in range(2, len(parts)):  # linjax.P for linjax.P.m (linjax itself excluded)
            package = ".".join(parts[:k])
            if not (importer == package or importer.startswith(package + ".")):
                edges[importer].add(package)
    return edges


def cycles(edges):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
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
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    modules = module_files()
    return modules, [i for i in imports(modules) if i[:2] not in KNOWN_VIOLATIONS]


def test_known_violations_are_still_there():
    modules = module_files()
    present = {i[:2] for i in imports(modules)}
    gone = [pair for pair in KNOWN_VIOLATIONS if pair not in present]
    print(f"{len(KNOWN_VIOLATIONS) - len(gone)} known violation(s) left: "
          f"{sorted(set(KNOWN_VIOLATIONS) - set(gone))}")
    assert gone == [], f"fixed, so remove them from KNOWN_VIOLATIONS: {gone}"


def test_every_module_has_a_layer(graph):
    modules, _ = graph
    layers = layer_of(modules)
    missing = sorted(set(modules) - set(layers))
    assert not missing, (f"modules missing from the layer table of tests/test_import_layers.py "
                         f"and docs/architecture.md: {missing}")


def test_no_import_cycles(graph):
    modules, found = graph
    found_cycles = cycles(runtime_edges(modules, found))
    print(f"{len(modules)} modules, {len(found)} linjax imports, {len(found_cycles)} cycles")
    assert found_cycles == [], f"import cycles: {found_cycles}"


def test_no_upward_imports(graph):
    modules, found = graph
    layers = layer_of(modules)
    upward = [f"{path} ({layers[importer][1]}) imports {imported} ({layers[imported][1]}), "
              f"line {line}"
              for importer, imported, line, _ in found
              for path in [modules[importer][0].relative_to(ROOT)]
              if imported in layers and importer in layers
              and layers[imported][0] > layers[importer][0]]
    print(f"{len(upward)} upward imports")
    assert upward == [], "upward imports:\n" + "\n".join(upward)


def test_function_local_imports_only_where_listed(graph):
    modules, found = graph
    local = sorted({(importer, imported) for importer, imported, _, is_local in found
                    if is_local})
    unlisted = [pair for pair in local
                if not any(pair[0] == a and (pair[1] == b or pair[1].startswith(b + "."))
                           for a, b in LOCAL_IMPORTS_ALLOWED)]
    print(f"{len(local)} function-local linjax imports, all listed")
    assert unlisted == [], (f"function-local imports of linjax modules: {unlisted}; import at "
                            "the top of the module (the layer table allows it) or list the "
                            "reason in LOCAL_IMPORTS_ALLOWED")


def test_the_reader_sees_every_form(tmp_path):
    """The reader finds module-level, function-local, relative and submodule imports."""
    probe = tmp_path / "probe.py"
    probe.write_text("import linjax.fit\nfrom linjax import links\nfrom . import penalties\n"
                     "from linjax.model import predict\nimport numpy\n"
                     "def f():\n    from .solvers import status\n    import linjax.cli as c\n")
    empty = tmp_path / "empty.py"
    empty.write_text("")
    names = ["linjax", "linjax.fit", "linjax.links", "linjax.penalties", "linjax.model",
             "linjax.solvers", "linjax.solvers.status", "linjax.cli"]
    modules = {name: (empty, name in ("linjax", "linjax.solvers")) for name in names}
    modules["linjax.probe"] = (probe, False)
    got = sorted((b, local) for a, b, _, local in imports(modules) if a == "linjax.probe")
    assert got == [("linjax.cli", True), ("linjax.fit", False), ("linjax.links", False),
                   ("linjax.model", False), ("linjax.penalties", False),
                   ("linjax.solvers.status", True)]
    edges = runtime_edges(modules, imports(modules))
    assert "linjax.solvers" in edges["linjax.probe"]  # the subpackage's __init__ runs first
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
