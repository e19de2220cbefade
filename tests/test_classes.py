"""Several structures per case (`data.classes`): one session per class and held-out case, each exactly the
session a job with `data.foreground=[class]` runs; per-class keys in MLflow, rows in the console and the
report; a class missing from a case fails that session only.

The jobs run on a tiny MSD folder written here (4 cases of 16 x 40 x 40 voxels, two labelled blobs; case
c3 has no label 2), with paste as the method, a 3-step baseline and a noisy robot (whose draws must be those
of the one-class job): the plumbing, not a result.
"""

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import SimpleITK as sitk

from iunet_bench.analysis.report import cli as report_cli
from iunet_bench.core.schema import ConfigError
from iunet_bench.tasks.config import compose_config
from iunet_bench.tracking import resume
from tests.conftest import ROOT, SHARED_DATA, run_cli

NAMES = {
    1: "left blob",
    2: "right blob",
}  # dataset.json's names; sessions carry left_blob/..., right_blob/...
HELD_OUT = ("c1", "c3")


def write_msd(root: Path) -> Path:
    """Four cases, label 1 a blob on the left, label 2 one on the right (absent from c3)."""
    rng = np.random.default_rng(0)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    z, y, x = np.ogrid[:16, :40, :40]
    training = []
    for i in range(4):
        label = np.zeros((16, 40, 40), np.uint8)
        label[((z - 8) / 5) ** 2 + ((y - 12 - i) / 6) ** 2 + ((x - 12) / 6) ** 2 < 1] = 1
        if i != 3:
            label[((z - 8) / 4) ** 2 + ((y - 26) / 5) ** 2 + ((x - 27 + i) / 7) ** 2 < 1] = 2
        image = rng.normal(0, 20, label.shape) + np.where(label == 1, 80, 0) + np.where(label == 2, 160, 0)
        for array, folder in ((image.astype(np.int16), "imagesTr"), (label, "labelsTr")):
            itk = sitk.GetImageFromArray(array)
            itk.SetSpacing((1.5, 1.5, 3.0))
            sitk.WriteImage(itk, str(root / folder / f"c{i}.nii.gz"))
        training.append({"image": f"./imagesTr/c{i}.nii.gz", "label": f"./labelsTr/c{i}.nii.gz"})
    labels = {"0": "background", **{str(k): v for k, v in NAMES.items()}}
    meta = {"name": "two blobs", "modality": {"0": "CT"}, "labels": labels, "training": training}
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def job(root: Path, *overrides: str) -> list[str]:
    return [
        "experiment=smoke",
        "progress=false",
        "data=msd",
        f"data.root={root}",
        f"data.split.test=[{','.join(HELD_OUT)}]",
        "interact=paste",
        "train.steps=3",
        "session.rounds=2",
        "simulator=scribble_sloppy",  # a noisy robot: its draws decide the curves
        "threads=1",
        *overrides,
    ]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """The job with `data.classes=[1,2]`, and (each in its own store) the jobs with `data.foreground=[1]`
    and `[2]` as a multirun: different code paths, the same sessions."""
    tmp = tmp_path_factory.mktemp("classes")
    root = write_msd(tmp / "two")
    (tmp / "classes").mkdir()
    (tmp / "single").mkdir()
    classes = run_cli(*job(root, "data.classes=[1,2]"), cwd=tmp / "classes")
    single = run_cli("-m", *job(root, "data.foreground=[1],[2]"), cwd=tmp / "single")
    return tmp, classes, single


def runs_of(folder: Path):
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'runs' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("iunet_bench")
    return client, client.search_runs([exp.experiment_id], "tags.kind = 'job'")


def history(client, run, key: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


@pytest.mark.slow
def test_one_session_per_class_and_case_a_missing_class_fails_alone(jobs):
    tmp, done, _ = jobs
    assert done.returncode == 0, done.stderr[-3000:]
    client, (run,) = runs_of(tmp / "classes")
    sessions = [f"{c}/{case}" for c in ("left_blob", "right_blob") for case in HELD_OUT]
    assert run.data.tags["held_out_cases"] == ",".join(sessions)
    # c3 has no label 2: that session fails when loaded, named; c3's label 1 session and the others run
    assert run.data.tags["failed_cases"] == "1"
    folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp / "artifacts")))
    failures = json.loads((folder / "failures.json").read_text())
    assert [(f["case_id"], f["stage"]) for f in failures] == [("right_blob/c3", "load")]
    assert "label is empty" in failures[0]["error"] and "c3" in failures[0]["error"]
    finished = sorted(str(p.relative_to(folder / "records")) for p in (folder / "records").rglob("*.json"))
    assert finished == ["left_blob/c1.json", "left_blob/c3.json", "right_blob/c1.json"]
    masks = sorted(str(p.relative_to(folder / "masks")) for p in (folder / "masks").rglob("*.nii.gz"))
    assert masks == ["left_blob/c1.nii.gz", "left_blob/c3.nii.gz", "right_blob/c1.nii.gz"]
    # what a resume reads back: every finished session, by its own id
    assert sorted(resume.load_previous(client, run).cases) == [
        "left_blob/c1",
        "left_blob/c3",
        "right_blob/c1",
    ]
    # per session, per class (mean curve and summary), and each class's own baseline
    m = run.data.metrics
    for session in ("left_blob/c1", "left_blob/c3", "right_blob/c1"):
        assert len(history(client, run, f"dsc/{session}")) == 3
    left = [history(client, run, f"dsc/left_blob/{c}") for c in HELD_OUT]
    assert history(client, run, "dsc/left_blob") == pytest.approx(np.mean(left, axis=0))
    assert m["dsc_final/left_blob"] == pytest.approx(np.mean([c[-1] for c in left]))
    assert m["dsc_final/right_blob"] == pytest.approx(history(client, run, "dsc/right_blob/c1")[-1])
    assert m["cases/left_blob"] == 2 and m["cases/right_blob"] == 1
    assert run.data.tags["baseline_key/left_blob"] != run.data.tags["baseline_key/right_blob"]
    # the console: one row per class and their mean
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert table["left_blob"][1] == "2" and table["right_blob"][1] == "1" and table["mean"][1] == "3"
    assert float(table["left_blob"][3]) == pytest.approx(m["dsc_final/left_blob"], abs=5e-4)


@pytest.mark.slow
def test_each_class_is_the_job_of_that_class_alone(jobs):
    """The independent check: the class sessions' numbers and baselines equal those of the jobs with
    `data.foreground=[1]` and `[2]` (each of those with plain case ids and one structure)."""
    tmp, done, single = jobs
    assert done.returncode == 0 and single.returncode == 0, (done.stderr[-2000:], single.stderr[-2000:])
    client, (run,) = runs_of(tmp / "classes")
    alone_client, alone = runs_of(tmp / "single")
    by_class = {{"[1]": "left_blob", "[2]": "right_blob"}[r.data.params["data.foreground"]]: r for r in alone}
    assert sorted(by_class) == ["left_blob", "right_blob"]
    for name, other in by_class.items():
        assert run.data.tags[f"baseline_key/{name}"] == other.data.tags["baseline_key"]
        cases = [
            c
            for c in other.data.tags["held_out_cases"].split(",")
            if f"{name}/{c}" in run.data.tags["held_out_cases"]
        ]
        assert cases == list(HELD_OUT)
        for case in cases:
            mine = history(client, run, f"dsc/{name}/{case}")
            theirs = history(alone_client, other, f"dsc/{case}")
            assert mine == pytest.approx(theirs, abs=1e-9), (name, case)
        assert run.data.metrics[f"dsc_final/{name}"] == pytest.approx(other.data.metrics["dsc_final"])
        assert run.data.metrics[f"dsc_auc/{name}"] == pytest.approx(other.data.metrics["dsc_auc"])
    # the job alone with foreground=[2] loses c3 the same way
    assert by_class["right_blob"].data.tags["failed_cases"] == "1"


@pytest.mark.slow
def test_report_has_a_row_per_class(jobs, tmp_path):
    tmp, done, _ = jobs
    assert done.returncode == 0, done.stderr[-2000:]
    uri = f"sqlite:///{tmp / 'classes' / 'runs' / 'mlflow.db'}"
    md = report_cli.report(uri, "iunet_bench", None, None, tmp_path / "report")
    rows = [line for line in md.splitlines() if "_blob |" in line]
    assert [row.split("|")[2].strip() for row in rows] == ["left_blob", "right_blob"]
    assert [row.split("|")[3].strip() for row in rows] == ["2/2", "1/2"]
    assert (tmp_path / "report" / "report_classes.csv").is_file()


def test_a_plugin_without_a_baseline_runs_each_class_and_trains_nothing(tmp_path):
    """`interact=plugin` with `initial: none` (the example plug-in): one session per class and case from an
    empty mask, no class trains a baseline (no `baseline_key/<class>` tag), the per-class keys logged."""
    root = write_msd(tmp_path / "two")
    done = run_cli(
        *job(root, "data.classes=[1,2]", "interact=plugin", "interact.target=region_grow:RegionGrow"),
        cwd=tmp_path,
        pythonpath=(ROOT / "examples" / "plugins",),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client, (run,) = runs_of(tmp_path)
    assert not [t for t in run.data.tags if t.startswith("baseline_key")]
    for session in ("left_blob/c1", "left_blob/c3", "right_blob/c1"):
        assert history(client, run, f"dsc/{session}")[0] == 0.0  # round 0: the empty mask
    assert run.data.metrics["dsc_final/left_blob"] > 0 and run.data.metrics["dsc_final/right_blob"] > 0
    assert run.data.tags["failed_cases"] == "1"  # right_blob/c3: no label 2, as before


def test_classes_and_foreground_together_are_refused(tmp_path):
    root = write_msd(tmp_path / "two")
    base = ["data=msd", f"data.root={root}"]
    with pytest.raises(ConfigError) as err:
        compose_config([*base, "data.classes=[1,2]", "data.foreground=[1]"])
    assert "data.classes and data.foreground" in str(err.value)
    with pytest.raises(ConfigError) as err:
        compose_config([*base, "data.classes=[1,1]"])
    assert "data.classes" in str(err.value) and "twice" in str(err.value)
    with pytest.raises(ConfigError) as err:
        compose_config([*base, "data.classes=[1]", "task=observers", "experiment=observers"])
    assert "data.classes" in str(err.value) and "task=observers" in str(err.value)
    # a value outside the data set's labels: named when the data set is listed, before any compute
    done = run_cli(*base, "data.classes=[1,5]", "progress=false", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "data.classes: values [5] are not in the label mapping [0, 1, 2]" in done.stderr


BTCV = SHARED_DATA / "btcv-ct-dev"


@pytest.mark.skipif(not (BTCV / "dataset.json").is_file(), reason="shared BTCV data not present")
def test_btcv_classes_load_and_crop_each_organ(tmp_path):
    """BTCV with four organs: one session per organ of the held-out case, each cropped around its organ,
    named by dataset.json (no training: an untrained baseline, paste, 2 rounds)."""
    done = run_cli(
        "data=msd",
        f"data.root={BTCV}",
        "data.classes=[1,2,3,11]",
        "data.split.test=[btcv_00]",
        "data.split.train=[btcv_01]",
        "data.preprocess.grid=[8,24,24]",
        "model.base_filters=4",
        "model.depth=2",
        "model.pool_z_levels=[1]",
        "train.steps=0",
        "interact=paste",
        "session.rounds=2",
        "session.pictures=0",
        "progress=false",
        "threads=1",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    names = ["spleen", "right_kidney", "left_kidney", "pancreas"]
    table = [
        line.split()[0] for line in done.stdout.splitlines() if line.split()[:1] and line.split()[0] in names
    ]
    assert table == names
    crops = {}
    for name in names:
        (records,) = (tmp_path / "runs" / "hydra").rglob(f"records/{name}/btcv_00.json")
        assert len(resume.records_from_json(records.read_text())) == 3
    rows = (next((tmp_path / "runs" / "hydra").rglob("cases.csv"))).read_text().splitlines()
    held = [r.split(",") for r in rows if ",held_out," in r]
    assert [r[0] for r in held] == [f"{n}/btcv_00" for n in names]
    crops = {r[0]: r[5] for r in held}  # grid spacing: each organ's own box
    assert len(set(crops.values())) == len(names)
