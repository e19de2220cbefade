"""A plug-in model under the harness's robots: the contract (`interactive/plugin.py`), checked in-process on a
tiny volume, and end to end through `python -m iunet_bench interact=plugin` with the example plug-in
(`examples/plugins/region_grow.py`) and with plug-ins that misbehave on purpose (`tests/plugins/faulty.py`)."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from iunet_bench.core.schema import ConfigError
from iunet_bench.data.case import Volume
from iunet_bench.interactive import build_refiner
from iunet_bench.interactive.config import PluginInteract
from iunet_bench.interactive.plugin import PluginError, PluginRefiner, Prompts, check_mask
from iunet_bench.session.loop import run_session
from iunet_bench.tasks.config import load_config
from iunet_bench.tasks.prepare import check_plugin
from simulators.box import BoxRobot
from simulators.click import ClickRobot, ClickStyle
from simulators.interaction import ADD, Click
from simulators.policy import ClickPolicy
from tests.conftest import ROOT, run_cli
from tests.plugins import faulty, recorder

SHAPE = (8, 24, 24)
EXAMPLES = ROOT / "examples" / "plugins"
FAULTY = ROOT / "tests" / "plugins"


def blob() -> Volume:
    label = np.zeros(SHAPE, np.uint8)
    label[2:6, 6:16, 5:17] = 1
    image = np.where(label, 0.5, -0.5).astype(np.float32)
    return Volume("blob", image, label, (2.0, 1.0, 1.0), (0, 0, 0, *SHAPE), SHAPE)


def test_prompts_carry_the_cases_clicks_box_and_masks_so_far_and_each_case_ends():
    recorder.Recorder.calls, recorder.Recorder.threads = [], set()
    volume = blob()
    robot = ClickRobot(clicks=ClickStyle(rule="cvpr25"), policy=ClickPolicy(min_region_voxels=1))
    first = BoxRobot()
    refiner = build_refiner(
        PluginInteract(target="tests.plugins.recorder:Recorder", options={"scale": 1.0}), None
    )
    empty = np.zeros(SHAPE, np.uint8)
    given = []

    def keep(record, prediction, interaction):
        given.append((interaction, prediction))

    records = run_session(volume, empty, robot, refiner, 3, seed=0, on_round=keep, first=first)
    begin, *predicts, end = recorder.Recorder.calls
    (thread,) = recorder.Recorder.threads  # every call of the instance on one thread, not the job's
    assert thread != threading.get_ident()
    assert [c[0] for c in recorder.Recorder.calls] == ["begin", "predict", "predict", "predict", "end"]
    _, image, spacing, initial = begin
    assert initial is None  # interact.initial: none
    assert np.array_equal(image, volume.image) and image is not volume.image and spacing == (2.0, 1.0, 1.0)
    interactions = [i for i, _ in given[1:]]
    assert interactions[0].box is not None and interactions[0].clicks == ()
    add, remove, clicks = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool), []
    for r, ((_, prompts, previous), interaction) in enumerate(zip(predicts, interactions), start=1):
        assert isinstance(prompts, Prompts) and prompts.round == r and prompts.new is interaction
        assert prompts.box == interactions[0].box  # the case's box, every round after it was given
        add, remove = (
            (add | interaction.add) & ~interaction.remove,
            (remove | interaction.remove) & ~interaction.add,
        )
        clicks += interaction.clicks
        assert prompts.clicks == tuple(clicks) and all(isinstance(c, Click) for c in clicks)
        assert np.array_equal(prompts.add, add) and np.array_equal(prompts.remove, remove)
        assert previous.dtype == np.uint8 and np.array_equal(previous, given[r - 1][1])  # what the user saw
    assert len(clicks) == 2 and clicks[0].label == ADD  # the box leaves the organ missed: an "add" click
    # the probabilities came back thresholded at 0.5: the previous mask with the prompts pasted in
    last = (given[-2][1].astype(bool) | add) & ~remove
    assert np.array_equal(given[-1][1], last.astype(np.uint8)) and records[-1].dsc > records[1].dsc == 0
    # initial: baseline hands the round-0 prediction to begin
    recorder.Recorder.calls = []
    other = PluginRefiner(PluginInteract(target="tests.plugins.recorder:Recorder", initial="baseline"))
    other.start(volume, volume.label)
    assert np.array_equal(recorder.Recorder.calls[0][3], volume.label)


@pytest.mark.parametrize(
    "out, expected",
    [
        (np.ones(SHAPE, bool), 1),
        (np.ones(SHAPE, np.int64), 1),
        (np.full(SHAPE, 0.5, np.float32), 1),  # foreground at >= 0.5, as the harness's own networks
        (np.full(SHAPE, 0.49), 0),
    ],
)
def test_a_mask_or_probabilities_of_the_images_shape_are_taken(out, expected):
    mask = check_mask(out, SHAPE, "m:P")
    assert mask.dtype == np.uint8 and mask.shape == SHAPE and set(np.unique(mask)) == {expected}


@pytest.mark.parametrize(
    "out, message",
    [
        (np.zeros(SHAPE[1:], bool), r"shape \(24, 24\), expected the image's \(8, 24, 24\)"),
        (np.full(SHAPE, 2, np.uint8), r"integer values \[2\], expected 0 and 1"),
        (np.full(SHAPE, np.nan), r"non-finite"),
        (np.full(SHAPE, 1.5), r"expected probabilities in \[0, 1\]"),
        (np.zeros(SHAPE, complex), r"dtype complex128"),
        ([[0]], r"list, expected a numpy array"),
        (None, r"NoneType"),
    ],
)
def test_anything_else_is_refused_naming_the_target(out, message):
    with pytest.raises(PluginError, match=r"plug-in m:P: predict returned .*" + message):
        check_mask(out, SHAPE, "m:P")


def test_a_call_over_the_limit_fails_naming_target_and_limit_and_the_next_case_gets_a_new_instance():
    faulty.BEGUN.clear()
    cfg = PluginInteract(
        target="tests.plugins.faulty:Faulty", options={"mode": "slow", "case": 0}, timeout_s=0.5
    )
    refiner = PluginRefiner(cfg)
    volume = blob()
    robot = ClickRobot(policy=ClickPolicy(min_region_voxels=1))
    t0 = time.perf_counter()
    with pytest.raises(
        TimeoutError,
        match=r"plug-in tests.plugins.faulty:Faulty: predict did not return within interact.timeout_s=0.5 s",
    ):
        run_session(volume, np.zeros(SHAPE, np.uint8), robot, refiner, 2, seed=0)
    took = time.perf_counter() - t0
    assert took < 3, took  # the limit, not the plug-in's 60 s sleep
    stuck = refiner.plugin
    records = run_session(volume, np.zeros(SHAPE, np.uint8), robot, refiner, 2, seed=0)
    assert refiner.plugin is not stuck and stuck is None and records[-1].dsc > 0


def test_an_exception_is_wrapped_naming_the_target():
    faulty.BEGUN.clear()
    refiner = PluginRefiner(
        PluginInteract(target="tests.plugins.faulty:Faulty", options={"mode": "raise", "case": 0})
    )
    with pytest.raises(
        PluginError,
        match=r"plug-in tests.plugins.faulty:Faulty: predict raised RuntimeError: deliberate fault",
    ):
        run_session(blob(), np.zeros(SHAPE, np.uint8), ClickRobot(), refiner, 1, seed=0)


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module:X", r"module 'no_such_module' does not import \(ModuleNotFoundError"),
        ("tests.plugins.faulty:Nope", r"module 'tests.plugins.faulty' has no class named 'Nope'"),
        ("tests.plugins.faulty:BEGUN", r"module 'tests.plugins.faulty' has dict, not a class, named 'BEGUN'"),
        ("tests.plugins.faulty:NoPredict", r"class NoPredict has no method predict"),
    ],
)
def test_a_bad_target_is_a_configuration_error_naming_the_key(target, message):
    with pytest.raises(ConfigError, match=r"interact.target: '" + target + "': " + message):
        check_plugin(PluginInteract(target=target))


def test_the_target_must_be_module_colon_name():
    with pytest.raises(
        ConfigError, match=r"interact.target: 'region_grow.RegionGrow': expected `package.module:Name`"
    ):
        load_config({"interact": {"method": "plugin", "target": "region_grow.RegionGrow"}})
    with pytest.raises(ConfigError, match=r"interact.target"):
        load_config({"interact": {"method": "plugin"}})  # required


# --- end to end, through the command line ------------------------------------------------------------


def cli(*overrides: str, cwd: Path, path: Path):
    """`python -m iunet_bench` with `path` on PYTHONPATH (where the plug-in's module lives)."""
    return run_cli(*overrides, cwd=cwd, pythonpath=(path,))


def test_the_example_plugin_runs_the_cvpr25_protocol_and_trains_nothing(tmp_path):
    proc = cli(
        "protocol=cvpr25",
        "interact=plugin",
        "interact.target=region_grow:RegionGrow",
        "experiment=smoke",
        "progress=false",
        cwd=tmp_path,
        path=EXAMPLES,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("iunet_bench").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "plugin region_grow:RegionGrow click_cvpr25"
    curve = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "dsc"), key=lambda m: m.step)]
    assert len(curve) == 4 and curve[0] == 0.0  # round 0: an empty mask
    assert curve[3] > curve[1] > 0.3, curve  # the box gives a region, the clicks improve it
    # no baseline: nothing trained, nothing cached, no baseline tags
    assert "train_loss" not in run.data.metrics and "baseline_key" not in run.data.tags
    assert not (tmp_path / "runs" / "cache" / "baseline").exists() or not any(
        (tmp_path / "runs" / "cache" / "baseline").iterdir()
    )
    assert "DSC 0.000 ->" in proc.stdout


def test_each_faulty_plugin_fails_only_its_case_naming_the_target(tmp_path):
    sweep = tmp_path / "sweep"
    proc = cli(
        "-m",
        "protocol=cvpr25",
        "interact=plugin",
        "interact.target=faulty:Faulty",
        "experiment=smoke",
        "+interact.options.mode=raise,shape,slow",
        "interact.timeout_s=2",
        "progress=false",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        path=FAULTY,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = {
        "raise": "predict raised RuntimeError: deliberate fault",
        "shape": "predict returned shape (24, 24), expected the image's (8, 24, 24)",
        "slow": "predict did not return within interact.timeout_s=2 s",
    }
    seen = {}
    for failures in sweep.glob("*/failures.json"):
        folder = failures.parent
        mode = yaml.safe_load((folder / "config.yaml").read_text())["interact"]["options"]["mode"]
        (failed,) = json.loads(failures.read_text())
        assert f"plug-in faulty:Faulty: {expected[mode]}" in failed["error"], failed["error"]
        assert f"FAILED case {failed['case_id']} (session): " in proc.stderr
        with open(folder / "rounds.csv") as f:
            finished = {r["case_id"] for r in csv.DictReader(f)}
        assert finished and failed["case_id"] not in finished  # the other case finished
        seen[mode] = failed["case_id"]
    assert set(seen) == set(expected)
    assert proc.stderr.count("plug-in faulty:Faulty") >= 3


def test_a_bad_target_exits_2_before_anything_is_computed(tmp_path):
    t0 = time.perf_counter()
    proc = cli(
        "interact=plugin", "interact.target=faulty:NoPredict", "experiment=smoke", cwd=tmp_path, path=FAULTY
    )
    took = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "interact.target: 'faulty:NoPredict': class NoPredict has no method predict" in proc.stderr
    assert (
        not (tmp_path / "runs" / "mlflow.db").exists()
        and not (tmp_path / "runs" / "cache" / "baseline").exists()
    )
    print(f"bad target refused in {took:.1f} s")


def test_the_how_to_page_shows_the_example_plugin_in_full():
    page = (ROOT / "docs" / "how-to" / "own-model.md").read_text(encoding="utf-8")
    code = (EXAMPLES / "region_grow.py").read_text(encoding="utf-8")
    assert f"```python\n{code}```" in page, (
        "docs/how-to/own-model.md: paste examples/plugins/region_grow.py again"
    )
