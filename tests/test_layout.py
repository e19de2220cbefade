"""The code's shape: imports run down the rooms (docs/reference/architecture.md, whose rooms table is RANKS),
and no module imports itself back."""

from __future__ import annotations

import ast
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


def imports(tree: ast.Module, top_level_only: bool = False):
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`


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


def test_no_module_imports_itself_back_at_import_time():
    graph = {name: {t for t in imports(tree, top_level_only=True) if t in ALL} for name, tree in ALL.items()}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join([*path, nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_simulators_data_and_metrics_never_import_tensorflow():
    for name, tree in ALL.items():
        if name.startswith(
            ("simulators", "iunet_bench.data", "iunet_bench.core.metrics", "iunet_bench.core.schema")
        ):
            bad = [t for t in imports(tree) if t.split(".")[0] in ("tensorflow", "keras")]
            assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_speed_scripts_build_what_they_time_through_the_jobs_setup(path):
    """A benchmark measures what a job runs only if it builds it the job's way (`JobSetup`): no model,
    baseline or refiner made by hand (where the precision once went missing), no refiner internals."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    runs_the_job = {"-m", "iunet_bench"} <= strings  # or it times the job's own command line
    assert "JobSetup" in names or "prepare" in names or runs_the_job
    assert not names & {"load_or_train", "build_unet", "build_refiner", "IUnetRefiner", "train"}
    private = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_")}
    assert not private - {"__version__", "__doc__", "__name__"}, private
