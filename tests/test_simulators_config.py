"""The `simulator` config group: presets are complete and valid, every bad key or value is named, docs agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulators import ClickRobot, ScribbleRobot, SimulatorConfigError, make_annotator
from simulators.config import KEYS, markdown_table, parse

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "conf" / "simulator").glob("*.yaml"))
DOCS = ROOT / "README.md"


def flat_keys(cfg: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in cfg.items():
        out |= flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return out


def test_the_named_presets_exist():
    names = {p.stem for p in PRESETS}
    assert {"scribble_ideal", "scribble_careful", "scribble_sloppy", "click_ritm", "click_center"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_each_preset_is_valid_and_sets_every_key_of_its_kind(path):
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    values = parse(cfg)
    assert flat_keys(cfg) == set(values)  # self-contained: nothing left to a default
    assert cfg["name"] == path.stem
    robot = make_annotator(cfg)
    assert isinstance(robot, ScribbleRobot if cfg["kind"] == "scribble" else ClickRobot)


def test_unknown_key_is_an_error_naming_it_and_listing_the_allowed_keys():
    with pytest.raises(
        SimulatorConfigError, match=r"simulator\.noise\.wrong_label: unknown key.*noise\.wrong_label_rate"
    ):
        make_annotator({"kind": "scribble", "noise": {"wrong_label": 0.1}})
    with pytest.raises(SimulatorConfigError, match=r"simulator\.strokes\.shape: unknown key for kind=click"):
        make_annotator({"kind": "click", "strokes": {"shape": "line"}})
    with pytest.raises(SimulatorConfigError, match=r"simulator\.min_region_voxels: unknown key"):
        make_annotator({"kind": "scribble", "min_region_voxels": 10})
    with pytest.raises(SimulatorConfigError, match=r"simulator\.noise: expected a mapping"):
        make_annotator({"kind": "scribble", "noise": 0.1})


def bad_values(key) -> list:
    expected = key.check.expected
    if expected.startswith("one of"):
        return ["nonsense", 3]
    if "string" in expected:
        return [5]
    out = ["3", True, float("nan"), -1]
    if "[0, 1]" in expected:
        out.append(1.5)
    if "odd" in expected:
        out.append(2)
    return out


@pytest.mark.parametrize("key", [k for k in KEYS if k.path != "name"], ids=lambda k: k.path)
def test_every_key_rejects_bad_values_with_a_message_naming_it(key):
    kind = "click" if key.kinds == ("click",) else "scribble"
    for value in bad_values(key):
        cfg: dict = {"kind": kind}
        node = cfg
        *parents, leaf = key.path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
        with pytest.raises(SimulatorConfigError) as err:
            make_annotator(cfg)
        assert f"simulator.{key.path}:" in str(err.value) and key.check.expected in str(err.value)


def test_lists_and_cross_key_limits():
    robot = make_annotator({"strokes": {"shape": "line", "planes": ["axial", "sagittal"]}})
    assert robot.strokes.shape == ("line",) and robot.strokes.planes == ("axial", "sagittal")
    for bad in ([], ["line", "line"], ["spiral"]):
        with pytest.raises(SimulatorConfigError, match=r"simulator\.strokes\.shape"):
            make_annotator({"strokes": {"shape": bad}})
    with pytest.raises(
        SimulatorConfigError, match=r"simulator\.policy\.scribbles: 5 is more than simulator\.policy\.max"
    ):
        make_annotator({"policy": {"scribbles": 5, "max_scribbles": 4}})
    assert make_annotator({}).noise.is_ideal  # every key has a default: the ideal scribble robot


def test_simulators_import_neither_tensorflow_nor_pyplot():
    import subprocess
    import sys

    code = (
        "import sys, simulators, simulators.render, simulators.box; "
        "bad = [m for m in ('tensorflow', 'keras', 'matplotlib.pyplot') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout


def test_docs_table_matches_the_keys():
    assert DOCS.exists(), "README.md is missing"
    text = DOCS.read_text(encoding="utf-8")
    assert markdown_table() in text, (
        "regenerate the table: python -c 'from simulators.config import markdown_table'"
    )
    for key in KEYS:
        assert f"`simulator.{key.path}`" in text
