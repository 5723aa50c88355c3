"""The import graph of lib/lakeboost, read from the source (ast, no import runs): nothing outside
training imports the trainer, no import cycle between modules or packages, no lower layer
imports a higher one. Each check is proven on a small hand-made package first."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib" / "lakeboost"

# Layers: a package of the first group never imports one of the second.
LOWER = ("borrowed", "config", "io", "spark", "model", "metrics", "errors", "logs")
HIGHER = ("ingest", "refine", "features", "train", "tune", "score", "monitor", "steps", "pipeline", "cli")

# Tuning is the one package besides training that may import it: the fit (and its cluster
# checks), the preparation both share (train.prepare) and the refit of the best configuration,
# which is a training run (train.job); and the train step (tune/step.py: a fit, or a search and its
# refit, or a replay); and Optuna's pruned trial (tune/pruning.py: a fit with a per-round callback,
# the cluster's master for its progress directory, the eval metric it reports).
TUNE_MODULES = ("lakeboost.tune.job", "lakeboost.tune.evaluators", "lakeboost.tune.step", "lakeboost.tune.pruning")
TRAIN_FOR_TUNE = ("lakeboost.train.fit", "lakeboost.train.job", "lakeboost.train.preflight",
                  "lakeboost.train.prepare", "lakeboost.train.trainer")
# The runner and the command line wire the train step by its entry module, the step itself.
STEP_WIRING = ("lakeboost.steps", "lakeboost.pipeline", "lakeboost.cli")
TRAIN_STEP = "lakeboost.train.step"

# Imports another helper of issue #34 is removing: each would fail a check below until then.
# Delete an entry when its import goes; a stale entry fails test_known_exceptions_still_exist.
KNOWN_CYCLES: set[tuple[str, str]] = set()
KNOWN_TRAIN_IMPORTERS: set[tuple[str, str]] = set()

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> Iterable[str]:
    """The modules of `modules` an import statement names: `from a import b` is a.b when b is a
    module, else a (the package's __init__, re-exporting b)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: from the module's own package (itself, for an __init__)
            base = module.split(".")
            base = base[:len(base) - node.level + (1 if is_package else 0)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            yield f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source


def import_graph(root: Path) -> Graph:
    """Module -> the package's modules it imports anywhere (top level, functions, TYPE_CHECKING)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    graph: Graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found = {name for node in ast.walk(tree)
                 for name in _imported(node, module, path.name == "__init__.py", modules)}
        # `import a.b.c` names a.b.c; keep the longest prefix that is one of the package's modules.
        graph[module] = {_known(name, modules) for name in found if _known(name, modules)} - {module}
    return graph


def _known(name: str, modules: set[str]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def package_of(module: str) -> str:
    """lakeboost.train.fit -> lakeboost.train; a top-level module (lakeboost.steps) is its own."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: Graph) -> Graph:
    packages: Graph = {}
    for module, targets in graph.items():
        mine = package_of(module)
        packages.setdefault(mine, set()).update(package_of(t) for t in targets if package_of(t) != mine)
    return packages


def without(graph: Graph, edges: Iterable[tuple[str, str]]) -> Graph:
    dropped = set(edges)
    return {m: {t for t in targets if (m, t) not in dropped} for m, targets in graph.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) per strongly connected component of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm; the graphs are a few hundred nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: Graph, component: set[str]) -> list[str]:
    """A shortest cycle through the component's first node (breadth-first within it)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def upward_imports(graph: Graph) -> list[tuple[str, str]]:
    lower = {f"lakeboost.{p}" for p in LOWER}
    higher = {f"lakeboost.{p}" for p in HIGHER}
    return sorted((m, t) for m, targets in graph.items() for t in targets
                  if package_of(m) in lower and package_of(t) in higher)


def train_importers(graph: Graph) -> list[tuple[str, str]]:
    """(importer, train module) pairs outside training, tuning's use of the fit and the wiring of
    the train step."""
    train = "lakeboost.train"
    return sorted((m, t) for m, targets in graph.items() for t in targets
                  if package_of(t) == train and package_of(m) != train
                  and not (m in TUNE_MODULES and t in TRAIN_FOR_TUNE)
                  and not (package_of(m) in STEP_WIRING and t == TRAIN_STEP))


def test_nothing_but_training_and_tuning_imports_the_trainer() -> None:
    found = set(train_importers(import_graph(LIB))) - KNOWN_TRAIN_IMPORTERS
    assert not found, ("modules outside lakeboost.train import it; move what they use to lakeboost.model or "
                       f"lakeboost.metrics: {sorted(found)}")


def test_no_import_cycle_between_modules() -> None:
    found = cycles(without(import_graph(LIB), KNOWN_CYCLES))
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_no_import_cycle_between_packages() -> None:
    graph = without(import_graph(LIB), KNOWN_CYCLES)
    found = cycles(package_graph(graph))
    assert not found, "package cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_no_lower_layer_imports_a_higher_one() -> None:
    found = set(upward_imports(import_graph(LIB))) - KNOWN_CYCLES
    assert not found, f"upward imports (a lower layer importing a higher one): {sorted(found)}"


def test_known_exceptions_still_exist() -> None:
    graph = import_graph(LIB)
    stale = [(m, t) for m, t in KNOWN_CYCLES | KNOWN_TRAIN_IMPORTERS if t not in graph.get(m, set())]
    assert not stale, f"remove these entries, their imports are gone: {stale}"


# The checks themselves, on a small package written for the purpose: each one fails.

def _package(tmp_path: Path, files: dict[str, str]) -> Graph:
    root = tmp_path / "lakeboost"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(root)


@pytest.fixture
def bad(tmp_path: Path) -> Graph:
    return _package(tmp_path, {
        "io/__init__.py": "from lakeboost.io.catalog import Catalog\n",
        "io/catalog.py": "from lakeboost.io import helpers\nfrom lakeboost import errors\n",
        "io/helpers.py": "",
        "errors.py": "def late():\n    from lakeboost.score.batch import score\n",
        "score/__init__.py": "",
        "score/batch.py": "from ..train.fit import fit\nfrom lakeboost.errors import late\n",
        "train/__init__.py": "",
        "train/fit.py": "import lakeboost.io.catalog\n",
        "tune/__init__.py": "",
        "tune/job.py": "from lakeboost.train import fit\n",
        "tune/space.py": "from lakeboost.train.fit import fit\n",
        "train/step.py": "",
        "pipeline.py": "from lakeboost.train import step\n",
    })


def test_the_graph_resolves_relative_submodule_and_function_level_imports(bad: Graph) -> None:
    assert bad["lakeboost.score.batch"] == {"lakeboost.train.fit", "lakeboost.errors"}
    assert bad["lakeboost.io.catalog"] == {"lakeboost.io.helpers", "lakeboost.errors"}  # a submodule, not io
    assert bad["lakeboost.errors"] == {"lakeboost.score.batch"}  # inside a function
    assert bad["lakeboost.train.fit"] == {"lakeboost.io.catalog"}


def test_each_check_fails_on_a_package_that_breaks_it(bad: Graph) -> None:
    assert train_importers(bad) == [("lakeboost.score.batch", "lakeboost.train.fit"),
                                    ("lakeboost.tune.space", "lakeboost.train.fit")]  # tune.job, pipeline may
    assert cycles(bad) == [["lakeboost.errors", "lakeboost.score.batch", "lakeboost.errors"]]
    assert cycles(package_graph(bad)) == [["lakeboost.errors", "lakeboost.score", "lakeboost.errors"]]
    assert upward_imports(bad) == [("lakeboost.errors", "lakeboost.score.batch")]
    assert cycles(without(bad, {("lakeboost.errors", "lakeboost.score.batch")})) == []
