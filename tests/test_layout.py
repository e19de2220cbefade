"""The code's shape (docs/reference/architecture.md): imports run down the rooms, no module imports itself
back (not even from inside a function), each room's `__init__.py` says what it holds and may import, the
package's top stays small and no file grows past a screenful or two."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A module may import modules of its own room or of a lower rank, never of a higher one.
RANKS = [
    (
        "iunet_bench.core",
    ),  # schema, seeded generators, atomic files and caches, runtime, metrics: every room uses them
    ("simulators",),  # robots: numpy/scipy/scikit-image (+ the schema), never TensorFlow
    ("iunet_bench.data",),
    ("iunet_bench.models",),
    ("iunet_bench.train",),
    ("iunet_bench.interactive",),
    ("iunet_bench.session",),  # the round loop and its records
    ("iunet_bench.tracking",),  # MLflow, resume
    ("iunet_bench.analysis",),  # summaries, statistics, plots, the report
    ("iunet_bench.tasks",),  # the jobs: interactive, cross-validation, observers; the sweep callback
    ("iunet_bench.models.__main__", "iunet_bench.__main__"),
]


def room(module: str) -> tuple[str, int] | None:
    best = None
    for rank, rooms in enumerate(RANKS):
        for r in rooms:
            if (module == r or module.startswith(r + ".")) and (best is None or len(r) > len(best[0])):
                best = (r, rank)
    return best


def modules():
    for folder in ("iunet_bench", "simulators"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield name, ast.parse(path.read_text(encoding="utf-8"))


def import_nodes(tree: ast.Module, top_level_only: bool = False):
    """(imported name, line) of every absolute import: `import a.b` -> a.b; `from a import b` -> a and a.b
    (b may be a module)."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            yield from ((f"{node.module}.{a.name}", node.lineno) for a in node.names)


def imports(tree: ast.Module, top_level_only: bool = False):
    for name, _ in import_nodes(tree, top_level_only):
        yield name


ALL = dict(modules())


@pytest.mark.parametrize("name", sorted(ALL))
def test_imports_run_down_the_rooms(name):
    if name == "iunet_bench":  # the package itself: imports nothing, so that every room can be imported alone
        assert not list(imports(ALL[name]))
        return
    own = room(name)
    assert own is not None, f"{name} belongs to no room of tests/test_layout.py RANKS"
    up = []
    for target in imports(ALL[name]):
        other = room(target)
        if other is not None and other[0] != own[0] and other[1] > own[1]:
            up.append(target)
    assert not up, f"{name} (rank {own[1]}) imports higher rooms: {up}"


def test_no_import_circles_not_even_through_imports_inside_functions():
    """A circle closed by an import inside a function still ties two modules into one (and breaks at import
    time once someone moves that import to the top): move what both need into one of them or a third."""
    top = {name: {t for t in imports(tree, top_level_only=True)} for name, tree in ALL.items()}
    graph: dict[str, dict[str, int]] = {}
    for name, tree in ALL.items():
        graph[name] = {}
        for target, line in import_nodes(tree):
            if target in ALL and target != name:
                graph[name].setdefault(target, line)

    def edge(a: str, b: str) -> str:
        where = "top level" if b in top[a] else "inside a function"
        return f"{a} imports {b} (line {graph[a][b]}, {where})"

    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                steps = "\n  ".join(edge(a, b) for a, b in zip(cycle, cycle[1:]))
                pytest.fail(
                    f"import circle {' -> '.join(cycle)}:\n  {steps}\nbreak it: move what both need into one "
                    "of them or into a third small module that imports neither"
                )
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


TF_FREE = (
    "iunet_bench.core",
    "simulators",
    "iunet_bench.data",
    "iunet_bench.session",
    "iunet_bench.tracking",
    "iunet_bench.analysis",
)


def test_tf_free_rooms_never_import_tensorflow():
    """Not even inside a function: these rooms run (and their tests pass) where TensorFlow is absent."""
    for name, tree in ALL.items():
        if name.startswith(TF_FREE):
            bad = [t for t in imports(tree) if t.split(".")[0] in ("tensorflow", "keras")]
            assert not bad, f"{name} imports {bad}"


def test_the_top_of_the_package_stays_small():
    """`__init__.py`, `__main__.py` and the rooms: a new module goes into a room (or a new room joins RANKS)."""
    entries = sorted(
        p.name for p in (ROOT / "iunet_bench").iterdir() if not p.name.startswith((".", "__pycache__"))
    )
    assert len(entries) <= 11, f"iunet_bench/ holds {len(entries)} entries (at most 11): {entries}"


MAX_LINES = 400
LONG_FILES: set[str] = set()  # none: a file that must stay long is named here with the reason


def test_no_file_is_longer_than_400_lines():
    """A file past 400 lines holds more than one idea: split it along its ideas."""
    long = {}
    for folder in ("iunet_bench", "simulators"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                lines = len(path.read_text(encoding="utf-8").splitlines())
                if lines > MAX_LINES and rel not in LONG_FILES:
                    long[rel] = lines
    assert not long, f"files over {MAX_LINES} lines: {long}"


SHORT = {rooms[0]: rooms[0].rsplit(".", 1)[-1] for rooms in RANKS[:-1]}  # iunet_bench.core -> core


@pytest.mark.parametrize("package", sorted(SHORT), ids=lambda r: SHORT[r])
def test_each_room_says_what_it_holds_and_may_import(package):
    """Its `__init__.py` docstring: what the room holds, and a line `May import: <rooms>` naming exactly the
    rooms of lower rank in RANKS (or none of them) on that one line."""
    init = ROOT.joinpath(*package.split("."), "__init__.py")
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert len(doc.split()) >= 10, f"{init.relative_to(ROOT)}: no docstring saying what the room holds"
    said = re.search(r"May import: (.*)", doc)  # one line
    assert said, f"{init.relative_to(ROOT)}: its docstring has no line `May import: ...`"
    named = set(re.findall(rf"\b({'|'.join(SHORT.values())})\b", said.group(1)))
    rank = room(package)[1]
    lower = {SHORT[r] for r in SHORT if room(r)[1] < rank}
    assert named == lower, (
        f"{init.relative_to(ROOT)}: `May import:` names {sorted(named)}, RANKS says {sorted(lower)}"
    )


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_speed_scripts_build_what_they_time_through_the_jobs_setup(path):
    """A benchmark measures what a job runs only if it builds it the job's way (`JobSetup`): no model,
    baseline or refiner made by hand (where the precision once went missing), no refiner internals."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    runs_the_job = {"-m", "iunet_bench"} <= strings  # or it times the job's own command line
    assert "JobSetup" in names or "prepare" in names or runs_the_job
    made_by_hand = {"load_or_train", "build_unet", "build_refiner", "IUnetRefiner", "FineTuner", "train"}
    if path.name == "gpu.py":  # carried without the data readers: the job's own `train` on phantoms
        made_by_hand.discard("train")
    assert not names & made_by_hand
    private = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_")}
    assert not private - {"__version__", "__doc__", "__name__"}, private
