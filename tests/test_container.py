"""A CVPR 2025 challenge submission under the harness's robots (`interact=cvpr25_container`): the `.npz` it
is given checked against the challenge's evaluator (CVPR25_iter_eval.py: keys, dtypes, z-y-x clicks, boxes
with x the last axis), commands that fail in each way, and end to end through `python -m iunet_bench` with
the stand-in submission `examples/cvpr25/predict.py` run as a real subprocess."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from iunet_bench.interactive import build_refiner
from iunet_bench.interactive.config import ContainerInteract
from iunet_bench.interactive.container import (
    ContainerError,
    Cvpr25Container,
    challenge_input,
    read_segs,
    to_uint8,
)
from iunet_bench.interactive.plugin import PluginError, PluginRefiner, Prompts
from iunet_bench.tasks.config import load_config
from simulators.interaction import ADD, REMOVE, Click, Interaction, SliceBox
from tests.conftest import ROOT, run_cli
from tests.test_plugin import blob

SHAPE = (6, 10, 14)  # D, H, W all different: a swapped axis indexes another voxel or fails
PREDICT = ROOT / "examples" / "cvpr25" / "predict.py"


def saved(arrays: dict, tmp_path: Path) -> dict:
    """The arrays as a submission reads them: written with np.savez_compressed, loaded with pickles allowed."""
    np.savez_compressed(tmp_path / "case.npz", **arrays)
    with np.load(tmp_path / "case.npz", allow_pickle=True) as f:
        return {k: f[k] for k in f.files}


def test_the_file_has_the_challenges_keys_dtypes_and_axis_order(tmp_path):
    image = np.full(SHAPE, -1.0, np.float32)
    image[4, 2, 11] = 1.0  # one bright voxel, z=4 y=2 x=11: only z-y-x indexing finds it
    image[1, 3:7, 5:12] = 0.0  # the box's 2D rectangle on z_mid=1: rows 3..6, columns 5..11
    imgs = to_uint8(image)
    box = SliceBox(z0=0, z1=5, z_mid=1, y0=3, x0=5, y1=7, x1=12)
    clicks = (Click((4, 2, 11), ADD), Click((0, 9, 1), REMOVE), Click((2, 3, 4), ADD))

    first = saved(challenge_input(imgs, (3.0, 1.0, 0.5), box, (), None), tmp_path)
    assert sorted(first) == ["boxes", "imgs", "spacing"]  # the box round: no clicks, no prev_pred
    assert first["imgs"].dtype == np.uint8 and first["imgs"].shape == SHAPE
    assert first["imgs"].min() == 0 and first["imgs"].max() == 255 and first["imgs"][1, 3, 5] == 128
    (b,) = first["boxes"]
    assert b == {"z_min": 0, "z_max": 4, "z_mid": 1, "z_mid_x_min": 5, "z_mid_y_min": 3, "z_mid_x_max": 11,
                 "z_mid_y_max": 6}  # fmt: skip
    # the evaluator's reading: rows are y (axis 1), columns x (axis 2), ends inclusive
    rect = first["imgs"][
        b["z_mid"], b["z_mid_y_min"] : b["z_mid_y_max"] + 1, b["z_mid_x_min"] : b["z_mid_x_max"] + 1
    ]
    assert rect.shape == (4, 7) and (rect == 128).all()
    assert first["spacing"].tolist() == [3.0, 1.0, 0.5]

    previous = np.zeros(SHAPE, np.uint8)
    previous[1, 4, 6] = 1
    later = saved(challenge_input(imgs, (3.0, 1.0, 0.5), box, clicks, previous, class_value=3), tmp_path)
    assert sorted(later) == ["boxes", "clicks", "clicks_order", "imgs", "prev_pred", "spacing"]
    (per_class,) = later["clicks"]
    assert per_class == {"fg": [[4, 2, 11], [2, 3, 4]], "bg": [[0, 9, 1]]}
    assert later["imgs"][tuple(per_class["fg"][0])] == 255  # z-y-x, as np.argwhere gives them
    assert later["clicks_order"].tolist() == [["fg", "bg", "fg"]]
    assert later["prev_pred"].dtype == np.uint8 and set(np.unique(later["prev_pred"])) == {0, 3}
    assert later["prev_pred"][1, 4, 6] == 3
    xyz = saved(challenge_input(imgs, (3.0, 1.0, 0.5), None, clicks, previous, spacing_order="xyz"), tmp_path)
    assert (
        xyz["spacing"].tolist() == [0.5, 1.0, 3.0] and "boxes" not in xyz
    )  # no box: no key, as in the challenge


def test_a_bad_output_is_refused_naming_the_command_and_the_file(tmp_path):
    path = tmp_path / "out.npz"
    with pytest.raises(ContainerError, match=r"command 'cmd' wrote no .*out.npz"):
        read_segs(path, SHAPE, 1, "cmd")
    np.savez(path, seg=np.zeros(SHAPE, np.uint8))
    with pytest.raises(
        ContainerError, match=r"command 'cmd': .*out.npz has no key 'segs' \(keys: \['seg'\]\)"
    ):
        read_segs(path, SHAPE, 1, "cmd")
    np.savez(path, segs=np.zeros(SHAPE[::-1], np.uint8))
    with pytest.raises(
        ContainerError, match=r"'segs' has shape \(14, 10, 6\), expected the image's \(6, 10, 14\)"
    ):
        read_segs(path, SHAPE, 1, "cmd")
    segs = np.zeros(SHAPE, np.uint8)
    segs[0, 0, 0], segs[1, 1, 1] = 2, 1
    np.savez(path, segs=segs)
    assert read_segs(path, SHAPE, 2, "cmd").sum() == 1 and read_segs(path, SHAPE, 2, "cmd")[0, 0, 0] == 1


def one_round(command: str, tmp_path: Path, timeout_s: float = 90.0) -> np.ndarray:
    container = Cvpr25Container(command, workdir=str(tmp_path / "wd"), timeout_s=timeout_s)
    image = np.zeros(SHAPE, np.float32)
    container.begin(image, (1.0, 1.0, 1.0), None)
    box = SliceBox(z0=1, z1=4, z_mid=2, y0=2, x0=3, y1=8, x1=10)
    interaction = Interaction(np.zeros(SHAPE, bool), ~box.inside(SHAPE), box=box)
    prompts = Prompts(1, (), box, interaction.add, interaction.remove, interaction)
    return container.predict(prompts, np.zeros(SHAPE, np.uint8))


def test_the_example_submission_segments_the_box_in_a_real_subprocess(tmp_path):
    mask = one_round(f"python {PREDICT}", tmp_path)  # a uniform image: the whole slab grows
    assert mask.dtype == np.uint8 and mask.sum() == 3 * 6 * 7 and mask[1:4, 2:8, 3:10].all()
    log = next((tmp_path / "wd" / "logs").glob("*.log")).read_text()
    assert "keys ['boxes', 'imgs', 'spacing']" in log and "--- exit 0" in log


@pytest.mark.parametrize(
    "command, message",
    [
        ("echo model failed >&2; exit 3", r"exited with status 3 in round 1 .*last lines: model failed"),
        ("true", r"wrote no .*outputs/case\w+\.npz"),
        ("sleep 30", r"did not finish within 0.5 s \(timeout_s x 1 class\), round 1"),
    ],
)
def test_a_failing_command_raises_naming_itself(command, message, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(ContainerError, match=rf"command {re.escape(repr(command))}.*{message}"):
        one_round(command, tmp_path, timeout_s=0.5)
    assert time.perf_counter() - t0 < 5  # the sleeping shell and its child were killed, not waited for


def test_a_scribble_round_is_refused_not_dropped(tmp_path):
    container = Cvpr25Container("true", workdir=str(tmp_path / "wd"))
    container.begin(np.zeros(SHAPE, np.float32), (1.0, 1.0, 1.0), None)
    add = np.zeros(SHAPE, bool)
    add[2, 3, 3:6] = True  # a stroke: neither a click nor a box
    box = SliceBox(z0=1, z1=4, z_mid=2, y0=2, x0=3, y1=8, x1=10)  # given in an earlier round
    stroke = Interaction(add, np.zeros(SHAPE, bool))
    with pytest.raises(ContainerError, match=r"command 'true': round 2 gave no click and no box"):
        container.predict(Prompts(2, (), box, add, stroke.remove, stroke), np.zeros(SHAPE, np.uint8))
    assert not any((tmp_path / "wd" / "inputs").iterdir())  # nothing written, nothing run


def test_the_config_and_the_adapter(tmp_path):
    config = load_config({"interact": {"method": "cvpr25_container", "command": "sh predict.sh"}})
    assert isinstance(config.interact, ContainerInteract) and config.interact.timeout_s == 90.0
    refiner = build_refiner(config.interact, None)
    assert (
        isinstance(refiner, PluginRefiner) and refiner.cfg.timeout_s == 120.0
    )  # the command's limit fires first
    assert refiner.cfg.options["command"] == "sh predict.sh" and refiner.cfg.initial == "none"
    with pytest.raises(Exception, match=r"interact.command"):
        load_config({"interact": {"method": "cvpr25_container"}})  # required
    with pytest.raises(
        PluginError, match=r"predict raised ContainerError: command 'exit 4' exited with status 4"
    ):
        plug = build_refiner(ContainerInteract(command="exit 4", workdir=str(tmp_path / "wd")), None)
        volume = blob()
        plug.start(volume, np.zeros(volume.image.shape, np.uint8))
        box = SliceBox(z0=2, z1=6, z_mid=4, y0=6, x0=5, y1=16, x1=17)
        plug.refine(Interaction(np.zeros(volume.image.shape, bool), ~box.inside(volume.image.shape), box=box))


# --- end to end, through the command line ------------------------------------------------------------


def test_the_example_submission_runs_the_cvpr25_protocol_end_to_end(tmp_path):
    proc = run_cli(
        "protocol=cvpr25",
        "interact=cvpr25_container",
        f"interact.command='python {PREDICT} {{workdir}}'",
        "experiment=smoke",
        "progress=false",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("iunet_bench").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["failed_cases"] == "0"
    curve = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "dsc"), key=lambda m: m.step)]
    assert len(curve) == 4 and curve[0] == 0.0 and curve[1] > 0.3 and curve[3] > curve[1], curve
    (workdir,) = tmp_path.rglob("cvpr25_*")  # interact.workdir: null = a folder in the job's
    logs = sorted((workdir / "logs").glob("*.log"))
    assert len(logs) == 2  # the two held-out phantoms, one file each
    text = logs[0].read_text()
    assert text.count("--- exit 0") == 3 and "keys ['boxes', 'imgs', 'spacing']" in text
    assert "keys ['boxes', 'clicks', 'clicks_order', 'imgs', 'prev_pred', 'spacing']" in text
    assert "train_loss" not in run.data.metrics  # initial: none trains nothing


FAULTS = {  # fail on the job's first case only (a marker file in the workdir), then run the submission
    "exit": ("test -e seen || {{ touch seen; exit 3; }}; python {p}", "exited with status 3 in round 1"),
    "none": ("test -e seen || {{ touch seen; exit 0; }}; python {p}", "wrote no "),
    "slow": ("test -e seen || {{ touch seen; sleep 60; }}; python {p}", "did not finish within 2 s"),
}


def test_each_failing_command_fails_only_its_case_naming_the_command(tmp_path):
    sweep = tmp_path / "sweep"
    commands = ",".join(f"'{c.format(p=PREDICT)}'" for c, _ in FAULTS.values())
    t0 = time.perf_counter()
    proc = run_cli(
        "-m",
        "protocol=cvpr25",
        "interact=cvpr25_container",
        f"interact.command={commands}",
        "interact.timeout_s=2",
        "experiment=smoke",
        "progress=false",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = set()
    for failures in sweep.glob("*/failures.json"):
        folder = failures.parent
        command = yaml.safe_load((folder / "config.yaml").read_text())["interact"]["command"]
        (kind,) = [k for k, (c, _) in FAULTS.items() if c.format(p=PREDICT) == command]
        (failed,) = json.loads(failures.read_text())
        assert f"predict raised ContainerError: command {command!r}" in failed["error"], failed["error"]
        assert FAULTS[kind][1] in failed["error"], failed["error"]
        with open(folder / "rounds.csv") as f:
            finished = {r["case_id"] for r in csv.DictReader(f)}
        assert finished and failed["case_id"] not in finished  # the other case finished
        seen.add(kind)
    assert seen == set(FAULTS)
    print(f"three faulty jobs in {time.perf_counter() - t0:.0f} s")
