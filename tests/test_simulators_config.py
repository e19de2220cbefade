"""The `simulator` group: presets build the robot they name, settings reach the robot, and `simulators/`
stays free of TensorFlow and pyplot. (Every key's type and range is tested through the job's schema in
test_config.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from iunet_bench.core.schema import ConfigError
from simulators import ClickRobot, ScribbleRobot, make_annotator
from simulators.config import parse

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "conf" / "simulator").glob("*.yaml"))


def test_the_named_presets_exist():
    names = {p.stem for p in PRESETS}
    assert {"scribble_ideal", "scribble_careful", "scribble_sloppy", "click_ritm", "click_center"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_each_preset_builds_its_robot_with_the_presets_values(path):
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert cfg["name"] == path.stem
    robot = make_annotator(cfg)
    assert isinstance(robot, ScribbleRobot if cfg["kind"] == "scribble" else ClickRobot)
    for section, values in cfg.items():
        if isinstance(values, dict):
            for key, value in values.items():
                got = getattr(getattr(robot, section), key)
                assert got == (tuple(value) if isinstance(value, list) else value), (section, key)


def test_a_plain_mapping_is_validated_with_the_job_schemas_messages():
    robot = make_annotator({"strokes": {"shape": "line", "planes": ["axial", "sagittal"]}})
    assert robot.strokes.shape == ("line",) and robot.strokes.planes == ("axial", "sagittal")
    assert make_annotator({}).noise.is_ideal  # every key has a default: the ideal scribble robot
    with pytest.raises(ConfigError) as err:
        parse({"policy": {"scribbles": 5, "max_scribbles": 4}, "noise": {"wrong_label": 0.1}})
    text = str(err.value)
    assert "simulator.policy.scribbles: 5 is more than simulator.policy.max_scribbles (4)" in text
    assert "simulator.noise.wrong_label: unknown key" in text and "wrong_label_rate" in text
    for bad in ([], ["line", "line"], ["spiral"]):
        with pytest.raises(ConfigError, match=r"simulator\.strokes\.shape"):
            parse({"strokes": {"shape": bad}})
    with pytest.raises(ConfigError, match=r"simulator\.strokes\.thickness"):
        parse({"strokes": {"thickness": 2}})  # a brush has a centre voxel: odd widths only


def test_simulators_import_neither_tensorflow_nor_pyplot():
    code = (
        "import sys, simulators, simulators.render, simulators.box, simulators.config; "
        "bad = [m for m in ('tensorflow', 'keras', 'matplotlib', 'matplotlib.pyplot') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
