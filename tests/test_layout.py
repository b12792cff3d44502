"""The package's shape: no import cycle between modules, and packages import only the
layers below them (docs/design.md). Every import counts, those inside functions too."""
import ast
from pathlib import Path

from esptiny.paths import REPO

PACKAGE = REPO / "host" / "esptiny"

# Lower layers never import higher ones; a package may import its own layer's others
# only where listed. Top-level modules (errors, paths, atomic, ...) are the foundation.
LAYERS = [
    {"esptiny"},                      # foundation: errors, paths, atomic, quiet, progress, tf, ...
    {"esptiny.model"},                # the .tflite file and the runtimes that read it
    {"esptiny.link", "esptiny.aot"},  # the serial protocol and client; the AOT compiler
    {"esptiny.targets", "esptiny.devices"},
    {"esptiny.stages"},
    {"esptiny.cli", "esptiny.__main__"},
]
SAME_LAYER = {("esptiny.devices", "esptiny.targets"),  # devices read board profiles
              ("esptiny.__main__", "esptiny.cli")}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set:
    """Every esptiny module `path` imports, wherever the import statement stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("esptiny")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("esptiny"):
                continue
            for a in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{a.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES and m != name}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def cycles(graph: dict) -> list:
    """Strongly connected components of more than one module (Tarjan), each as a path."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer_of(module: str) -> tuple:
    for rank, packages in enumerate(LAYERS):
        for pkg in sorted(packages, key=len, reverse=True):
            if pkg != "esptiny" and (module == pkg or module.startswith(pkg + ".")):
                return rank, pkg
    return 0, "esptiny"


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_is_read_whole():
    assert {"esptiny.cli", "esptiny.stages.bench", "esptiny.aot.lower"} <= set(MODULES)
    # an import inside a function counts as much as one at the top
    assert "esptiny.model.tflm" in GRAPH["esptiny.stages.evaluate"]


def test_no_import_cycle():
    found = cycles(GRAPH)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c + c[:1]) for c in found)


def test_imports_point_down():
    wrong = []
    for name, deps in GRAPH.items():
        rank, pkg = layer_of(name)
        for dep in deps:
            dep_rank, dep_pkg = layer_of(dep)
            if dep_rank > rank or (dep_rank == rank and dep_pkg != pkg
                                   and (pkg, dep_pkg) not in SAME_LAYER):
                wrong.append(f"{name} -> {dep}")
    assert not wrong, "imports against the layering: " + ", ".join(sorted(wrong))
