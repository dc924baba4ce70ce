"""The layers of ARCHITECTURE.md, read from the source: imports point one way, no engine imports
another, the kernels import nothing else of w2v_async, and no module grows past about 400 lines."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "w2v_async"
# lower layers never import higher ones; a module may import its own layer (engines: see below)
LAYERS = {"models": 0, "errors": 0, "testhooks": 0, "config": 1, "scopes": 1, "warmup": 1, "io": 2, "io_fasttext": 2, "evaluation": 2, "signals": 1, "data": 3, "engines": 4, "job": 5, "job_glove": 5, "experiment": 5,
          "api": 6, "cli": 7, "__init__": 8}
MAX_LINES = 410


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, parts


def _imports(path, parts):
    """The w2v_async modules a file imports (top-level and inside functions), as part tuples."""
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + tuple(node.module.split(".")) if node.module else base
            elif node.module and node.module.startswith("w2v_async"):
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            for alias in node.names:  # `from . import api` names a module
                sub = target + (alias.name,)
                yield sub if (PACKAGE.joinpath(*sub).with_suffix(".py").exists()) else target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("w2v_async."):
                    yield tuple(alias.name.split(".")[1:])


def _layer(parts, as_target=False):
    if not parts:  # the package itself: imported only for __version__, while its __getattr__ reaches the API
        return 0 if as_target else LAYERS["__init__"]
    return LAYERS[parts[0]]


ENGINES = {"threads", "ray", "ray_actors", "sandblaster", "sandblaster_actors"}


@pytest.mark.parametrize("path, parts", list(_modules()), ids=lambda x: "/".join(x) if isinstance(x, tuple) else "")
def test_imports_point_down(path, parts):
    for target in _imports(path, parts):
        assert _layer(target, as_target=True) <= _layer(parts), \
            f"{'/'.join(parts)} imports {'/'.join(target)}, a higher layer"
        if parts[0] == "models":
            assert target[0] == "models", f"kernel module {'/'.join(parts)} imports {'/'.join(target)}"
        if parts[0] == "engines" and target[0] == "engines" and len(target) > 1:
            mine, theirs = parts[-1], target[1]
            allowed = theirs == "base" or (mine, theirs) in {("ray", "ray_actors"), ("sandblaster", "sandblaster_actors")}
            assert allowed, f"engine {mine} imports engine {theirs}"


@pytest.mark.parametrize("path, parts", list(_modules()), ids=lambda x: "/".join(x) if isinstance(x, tuple) else "")
def test_no_module_is_over_about_400_lines(path, parts):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_checks_see_imports():
    """Guards the test itself: a known downward import and a known engine import are found."""
    threads = PACKAGE / "engines" / "threads.py"
    found = set(_imports(threads, ("engines", "threads")))
    assert ("engines", "base") in found and ("models", "glove") in found
    assert ("engines", "ray") in set(_imports(PACKAGE / "job.py", ("job",)))


def test_every_folder_is_a_regular_package():
    """A folder without __init__.py still imports (a namespace package) but is left out of wheels."""
    folders = [p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert {p.name for p in folders} >= {"data", "engines", "models"}
    assert [p.name for p in folders if not (p / "__init__.py").exists()] == []


def _module_of(target):
    """The module file a target part tuple names: a package means its __init__."""
    if PACKAGE.joinpath(*target).with_suffix(".py").exists():
        return target
    return target + ("__init__",)


def import_cycles(graph):
    """Every import circle of graph (module -> modules it imports), each once, as a path that
    starts and ends at the same module (Tarjan's strongly connected components, then one cycle
    through each component of more than one module or a module importing itself)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(_a_cycle(graph, v, component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _a_cycle(graph, start, component):
    path, seen = [start], {start}
    while True:
        nxt = next(w for w in sorted(graph.get(path[-1], ())) if w in component and (w == start or w not in seen))
        path.append(nxt)
        if nxt == start:
            return path
        seen.add(nxt)


def test_no_module_imports_itself_through_others():
    """Function-local imports included: one hid the circle word2vec -> word2vec_guarded -> word2vec
    (issue 25). The package's own __init__ is left out: it re-exports the API lazily (__getattr__)."""
    graph = {}
    for path, parts in _modules():
        if parts == ("__init__",):
            continue
        graph[parts] = {_module_of(t) for t in _imports(path, parts)} - {("__init__",)}
    cycles = import_cycles(graph)
    assert cycles == [], "import circles: " + "; ".join(" -> ".join("/".join(m) for m in c) for c in cycles)


def test_the_cycle_check_finds_a_planted_circle():
    graph = {("a",): {("b",)}, ("b",): {("c",)}, ("c",): {("a",), ("d",)}, ("d",): set(), ("e",): {("e",)}}
    assert sorted(import_cycles(graph)) == [[("a",), ("b",), ("c",), ("a",)], [("e",), ("e",)]]
