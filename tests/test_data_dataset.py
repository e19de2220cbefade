"""Data set layouts, bad input, config validation, the split and the preprocessing cache.

Every data set here is written on the fly into pytest's tmp_path as small synthetic volumes.
"""

import errno
import json
import os
import tempfile
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

import iunet_bench.data.cache as cache_module
import iunet_bench.data.dataset as dataset_module
from iunet_bench.core.schema import ConfigError
from iunet_bench.data import CaseError, build_dataset

SHAPE = (10, 24, 28)  # z-y-x
PRE = {"sigma": 0.75, "window": [-160, 240], "margin": 0.05, "grid": [8, 16, 16]}


def volume_pair(seed: int, values=(1,)):
    """A noisy soft-tissue blob (HU) and its label (the given values in slabs of the blob)."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(SHAPE)
    blob = ((zz - 5) / 3.5) ** 2 + ((yy - 12) / 7.0) ** 2 + ((xx - 14 - seed % 3) / 8.0) ** 2 < 1
    image = np.where(blob, 45.0, -100.0) + rng.normal(0, 10, SHAPE)
    label = np.zeros(SHAPE, np.uint8)
    for i, v in enumerate(values):
        label[blob & (xx % len(values) == i)] = v
    return image.astype(np.int16), label


def write(path, array, spacing=(0.8, 0.8, 2.0), origin=(0.0, 0.0, 0.0), direction=None):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def make_folder(root, n=4, suffix=".nii.gz"):
    for i in range(n):
        image, label = volume_pair(i)
        write(root / "images" / f"case{i}{suffix}", image)
        write(root / "labels" / f"case{i}{suffix}", label)
    return root


def data_cfg(root, tmp_path, **extra):
    cfg = {
        "source": "folder",
        "root": str(root),
        "seed": 0,
        "cache_dir": str(tmp_path / "cache"),
        "split": {"folds": 2, "fold": 0},
        "preprocess": dict(PRE),
    }
    cfg.update(extra)
    return cfg


# ---------------------------------------------------------------------- layouts


def test_folder_layout_pairs_by_name_and_loads_every_format(tmp_path):
    root = tmp_path / "data"
    for i, suffix in enumerate((".nii.gz", ".nii", ".mha", ".nrrd", ".mhd")):
        image, label = volume_pair(i)
        write(root / "images" / f"c{i}{suffix}", image)
        write(root / "labels" / f"c{i}{suffix}", label)
    ds = build_dataset(data_cfg(root, tmp_path))
    assert ds.case_ids == [f"c{i}" for i in range(5)]
    volumes, failures = ds.volumes(ds.case_ids)
    assert failures == [] and [v.case_id for v in volumes] == ds.case_ids
    for v in volumes:
        assert v.image.shape == (8, 16, 16) and v.label.any()


def test_folder_suffixes_pair_nnunet_style_names(tmp_path):
    root = tmp_path / "data"
    for i in range(2):
        image, label = volume_pair(i)
        write(root / "imgs" / f"pan_{i:03d}_0000.nii.gz", image)
        write(root / "segs" / f"pan_{i:03d}_seg.nii.gz", label)
    cfg = data_cfg(
        root, tmp_path, images_dir="imgs", labels_dir="segs", image_suffix="_0000", label_suffix="_seg"
    )
    ds = build_dataset(cfg)
    assert ds.case_ids == ["pan_000", "pan_001"]
    assert ds.volumes(ds.case_ids)[1] == []


def test_manifest_lists_cases_and_a_missing_file_fails_only_its_case(tmp_path):
    root = make_folder(tmp_path / "data", n=3)
    rows = ["case_id,image,label"] + [f"p{i},images/case{i}.nii.gz,labels/case{i}.nii.gz" for i in range(3)]
    rows.append("p9,images/nowhere.nii.gz,labels/case0.nii.gz")
    (root / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ds = build_dataset(data_cfg(root, tmp_path, manifest="cases.csv"))
    assert ds.case_ids == ["p0", "p1", "p2", "p9"]
    volumes, failures = ds.volumes(ds.case_ids)
    assert [v.case_id for v in volumes] == ["p0", "p1", "p2"]
    (f,) = failures
    assert (
        f.case_id == "p9"
        and "case p9" in f.error
        and "nowhere.nii.gz" in f.error
        and "does not exist" in f.error
    )


def write_msd(root, labels=None, modality="CT", values=(1, 2), n=2):
    labels = labels or {"0": "background", "1": "pancreas", "2": "cancer"}
    training = []
    for i in range(n):
        image, label = volume_pair(i, values)
        if modality != "CT":
            image = (image.astype(np.float32) + 1000.0) * 3.7  # arbitrary MR-like units
        write(root / "imagesTr" / f"pancreas_{i:03d}.nii.gz", image)
        write(root / "labelsTr" / f"pancreas_{i:03d}.nii.gz", label)
        training.append(
            {"image": f"./imagesTr/pancreas_{i:03d}.nii.gz", "label": f"./labelsTr/pancreas_{i:03d}.nii.gz"}
        )
    (root / "imagesTr" / "._pancreas_000.nii.gz").write_bytes(b"macOS junk that dataset.json does not list")
    meta = {"labels": labels, "modality": {"0": modality}, "training": training}
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def test_msd_layout_maps_pancreas_and_tumour_to_foreground_by_default(tmp_path):
    root = write_msd(tmp_path / "Task07")
    ds = build_dataset(data_cfg(root, tmp_path, source="msd"))
    assert ds.case_ids == ["pancreas_000", "pancreas_001"]
    both = ds.load_case("pancreas_000").label
    only_pancreas = build_dataset(data_cfg(root, tmp_path, source="msd", foreground=[1])).load_case(
        "pancreas_000"
    )
    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "labelsTr" / "pancreas_000.nii.gz")))
    assert both.sum() == np.count_nonzero(raw) and only_pancreas.label.sum() == np.count_nonzero(raw == 1)
    assert 0 < only_pancreas.label.sum() < both.sum()


def test_msd_mr_data_set_runs_without_code_changes(tmp_path):
    root = write_msd(
        tmp_path / "TaskMR", labels={"0": "background", "1": "organ"}, modality="MRI", values=(1,)
    )
    ds = build_dataset(data_cfg(root, tmp_path, source="msd", preprocess={**PRE, "intensity": "auto"}))
    assert ds.preprocess_config.intensity == "zscore"
    volumes, failures = ds.volumes(ds.case_ids)
    assert failures == []
    for v in volumes:  # the organ stands out after normalisation, as it would with HU on CT
        assert v.image[v.label > 0].mean() > v.image[v.label == 0].mean() + 0.3
        assert v.image.min() >= -1 and v.image.max() <= 1


# ---------------------------------------------------------------------- bad input


def test_each_bad_case_fails_alone_naming_case_and_file(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    images, labels = root / "images", root / "labels"
    good_image, good_label = volume_pair(7)
    expected = {}  # case id -> (file that must be named, words that must appear)

    def add(cid, image=good_image, label=good_label, named="label", words=(), **label_geometry):
        ip, lp = images / f"{cid}.nii.gz", labels / f"{cid}.nii.gz"
        if image is not None:
            write(ip, image)
        if label is not None:
            write(lp, label, **label_geometry)
        expected[cid] = (ip if named == "image" else lp, words)

    add("size", label=good_label[:, :, :-1], words=("size",))
    add("spacing", spacing=(0.8, 0.8, 2.5), words=("spacing",))
    add("origin", origin=(5.0, 0.0, 0.0), words=("origin",))
    add("direction", direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1), words=("direction",))
    add("empty", label=np.zeros(SHAPE, np.uint8), words=("empty",))
    add("values", label=good_label * 3, words=("outside the mapping", "[3]"))
    add("nan", image=np.where(good_label > 0, np.nan, 0.0).astype(np.float32), named="image", words=("NaN",))
    inf = np.where(good_label > 0, np.inf, 0.0).astype(
        np.float32
    )  # MetaImage keeps inf (NIfTI is checked above)
    write(images / "inf.mha", inf)
    write(labels / "inf.mha", good_label)
    expected["inf"] = (images / "inf.mha", ("infinite",))
    write(images / "flat.nii.gz", good_image[0])  # a 2D image
    write(labels / "flat.nii.gz", good_label[0])
    expected["flat"] = (images / "flat.nii.gz", ("2D",))
    four = sitk.JoinSeries([sitk.GetImageFromArray(good_image)] * 2)
    sitk.WriteImage(four, str(images / "four.nii.gz"))
    write(labels / "four.nii.gz", good_label)
    expected["four"] = (images / "four.nii.gz", ("4D",))
    (images / "garbage.nii.gz").write_bytes(b"this is not an image at all" * 10)
    write(labels / "garbage.nii.gz", good_label)
    expected["garbage"] = (images / "garbage.nii.gz", ("unreadable",))
    data = write(images / "cut.nii", good_image).read_bytes()
    (images / "cut.nii").write_bytes(data[: len(data) // 2])  # truncated
    write(labels / "cut.nii", good_label)
    expected["cut"] = (images / "cut.nii", ("truncated",))
    data = write(images / "cutgz.nii.gz", good_image).read_bytes()
    (images / "cutgz.nii.gz").write_bytes(data[: len(data) - 40])  # truncated compressed stream
    write(labels / "cutgz.nii.gz", good_label)
    expected["cutgz"] = (images / "cutgz.nii.gz", ("truncated",))
    write(images / "cutmha.mha", good_image)
    data = (images / "cutmha.mha").read_bytes()
    (images / "cutmha.mha").write_bytes(data[: len(data) - 100])
    write(labels / "cutmha.mha", good_label)
    expected["cutmha"] = (images / "cutmha.mha", ("unreadable",))
    write(images / "alone.nii.gz", good_image)  # no label
    expected["alone"] = (images / "alone.nii.gz", ("no label",))

    ds = build_dataset(data_cfg(root, tmp_path))
    assert any("alone" in n for n in ds.notes)
    volumes, failures = ds.volumes(ds.case_ids)
    assert sorted(v.case_id for v in volumes) == ["case0", "case1"]  # the rest still loads
    errors = {f.case_id: f.error for f in failures}
    assert sorted(errors) == sorted(expected)
    for cid, (path, words) in expected.items():
        assert f"case {cid}" in errors[cid] and str(path) in errors[cid], errors[cid]
        for w in words:
            assert w in errors[cid], errors[cid]


def test_small_geometry_differences_within_tolerance_are_accepted(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    image, label = volume_pair(0)
    write(root / "labels" / "case0.nii.gz", label, spacing=(0.8, 0.8, 2.0 + 1e-6), origin=(1e-5, 0.0, 0.0))
    assert build_dataset(data_cfg(root, tmp_path)).volumes(["case0"])[1] == []


def test_a_folder_without_pairs_is_a_clear_error(tmp_path):
    root = tmp_path / "data"
    write(root / "images" / "a.nii.gz", volume_pair(0)[0])
    write(root / "labels" / "b.nii.gz", volume_pair(0)[1])
    with pytest.raises(ConfigError, match=r"^data\.root: no image/label pairs.*images"):
        build_dataset(data_cfg(root, tmp_path))


def _bad(change, key, shows, allowed=(), id=None):
    return pytest.param(change, key, shows, allowed, id=id or key)


PHANTOM = {"source": "phantom", "phantom": {"n_cases": 4}}
BAD_VALUES = [
    # every source
    _bad({"source": "nifti"}, "data.source", "'nifti'", ("phantom", "msd", "folder", "dicom")),
    _bad({"root": None}, "data.root", "None", id="data.root-null"),
    _bad({"root": "/no/such/folder"}, "data.root", "'/no/such/folder'", ("existing folder",)),
    _bad({"seed": -1}, "data.seed", "-1", ("greater than or equal to 0",)),
    _bad({"seed": "3"}, "data.seed", "'3'", ("integer",), id="data.seed-text"),
    _bad({"seed": True}, "data.seed", "True", ("integer",), id="data.seed-bool"),
    _bad({"cache_dir": 3}, "data.cache_dir", "3", ("path",)),
    _bad({"crop": "auto"}, "data.crop", "'auto'", ("reference", "robot_box")),
    _bad({"box_jitter": 2.0}, "data.box_jitter", "2.0", ("less than or equal to 1",)),
    _bad({"foreground": [0]}, "data.foreground", "[0]", (">= 1",)),
    _bad({"foreground": []}, "data.foreground", "[]", ("at least 1",), id="data.foreground-empty"),
    _bad({"label_values": [-1]}, "data.label_values", "[-1]", (">= 0",)),
    _bad({"geometry_tolerance": 0.9}, "data.geometry_tolerance", "0.9", ("less than or equal to 0.5",)),
    _bad({"colour": "blue"}, "data.colour", "unknown key", ("root", "preprocess", "split")),
    # data.split
    _bad({"split": {"folds": 1, "fold": 0}}, "data.split.folds", "1", ("greater than or equal to 2",)),
    _bad({"split": {"folds": True}}, "data.split.folds", "True", ("integer",), id="data.split.folds-bool"),
    _bad({"split": {"folds": 3, "fold": 3}}, "data.split.fold", "3", ("[0, 2]",)),
    _bad(
        {"split": {"folds": 9, "fold": 0}}, "data.split.folds", "9", ("found 4",), id="more-folds-than-cases"
    ),
    _bad({"split": {"folds": 2, "k": 1}}, "data.split.k", "unknown key", ("folds", "fold")),
    # data.preprocess
    _bad({"preprocess": {**PRE, "grid": [8, 16]}}, "data.preprocess.grid", "missing", id="grid-two-values"),
    _bad({"preprocess": {**PRE, "grid": [1, 16, 16]}}, "data.preprocess.grid", "[1, 16, 16]", (">= 2",)),
    _bad(
        {"preprocess": {**PRE, "grid": [8.5, 16, 16]}},
        "data.preprocess.grid",
        "8.5",
        ("integer",),
        id="grid-float",
    ),
    _bad(
        {"preprocess": {**PRE, "window": [240, -160]}},
        "data.preprocess.window",
        "[240, -160]",
        ("lo below hi",),
    ),
    _bad({"preprocess": {"percentiles": [0, 101]}}, "data.preprocess.percentiles", "[0, 101]", ("[0, 100]",)),
    _bad(
        {"preprocess": {**PRE, "intensity": "minmax"}},
        "data.preprocess.intensity",
        "'minmax'",
        ("window", "percentile", "zscore", "auto"),
    ),
    _bad({"preprocess": {**PRE, "orientation": "XYZ"}}, "data.preprocess.orientation", "'XYZ'", ("R/L",)),
    _bad(
        {"preprocess": {**PRE, "label_interpolation": "cubic"}},
        "data.preprocess.label_interpolation",
        "'cubic'",
        ("linear", "nearest"),
    ),
    _bad(
        {"preprocess": {**PRE, "sigma": -1.0}},
        "data.preprocess.sigma",
        "-1.0",
        ("greater than or equal to 0",),
    ),
    _bad(
        {"preprocess": {**PRE, "margin": 0.9}},
        "data.preprocess.margin",
        "0.9",
        ("less than or equal to 0.5",),
    ),
    _bad({"preprocess": {"zscore_clip": 0}}, "data.preprocess.zscore_clip", "0", ("0.1",)),
    _bad({"preprocess": {**PRE, "sigmaa": 1.0}}, "data.preprocess.sigmaa", "unknown key", ("sigma", "grid")),
    # keys of one source (folder, dicom, msd): values, and what listing finds
    _bad({"images_dir": 3}, "data.images_dir", "3", ("string",)),
    _bad(
        {"images_dir": "nowhere"},
        "data.images_dir",
        "nowhere",
        ("not an existing folder",),
        id="no-images-dir",
    ),
    _bad({"labels_dir": "nowhere"}, "data.labels_dir", "nowhere", ("not an existing folder",)),
    _bad({"image_suffix": 0}, "data.image_suffix", "0", ("string",)),
    _bad({"manifest": "missing.csv"}, "data.manifest", "missing.csv", ("does not exist",)),
    _bad(
        {"source": "dicom", "label_pattern": "label.nii.gz"},
        "data.label_pattern",
        "'label.nii.gz'",
        ("{case_id}",),
    ),
    _bad({"source": "msd"}, "data.root", "dataset.json", ("is missing",), id="msd-without-dataset.json"),
    _bad({"source": "msd", "foreground": [0]}, "data.foreground", "[0]", (">= 1",), id="msd-foreground"),
    # data.phantom
    _bad({**PHANTOM, "phantom": {"fatness": 1.0}}, "data.phantom.fatness", "unknown key", ("fat_thickness",)),
    _bad(
        {**PHANTOM, "phantom": {"touch_fraction": 2.0}}, "data.phantom.touch_fraction", "2.0", ("less than",)
    ),
    _bad(
        {**PHANTOM, "phantom": {"n_cases": 0}}, "data.phantom.n_cases", "0", ("greater than or equal to 1",)
    ),
    _bad({**PHANTOM, "phantom": {"shape": [4, 96, 96]}}, "data.phantom.shape", "[4, 96, 96]", ("8 voxels",)),
    _bad({**PHANTOM, "phantom": {"spacing": [0, 1, 1]}}, "data.phantom.spacing", "0", ("greater than 0",)),
    _bad(
        {**PHANTOM, "phantom": {"z_spacing": [3.0, 1.0]}},
        "data.phantom.z_spacing",
        "[3.0, 1.0]",
        ("lo <= hi",),
    ),
    _bad({**PHANTOM, "phantom": {"noise_hu": "loud"}}, "data.phantom.noise_hu", "'loud'", ("number",)),
]


@pytest.mark.parametrize(("change", "key", "shows", "allowed"), BAD_VALUES)
def test_config_errors_name_the_key_and_value_before_any_image_is_read(
    tmp_path, monkeypatch, change, key, shows, allowed
):
    root = make_folder(tmp_path / "data", n=4)
    monkeypatch.setattr(dataset_module, "read_case", lambda *a, **k: pytest.fail("read an image"))
    monkeypatch.setattr(dataset_module, "phantom_case", lambda *a, **k: pytest.fail("made a phantom"))
    with pytest.raises(ConfigError) as info:
        build_dataset({**data_cfg(root, tmp_path), **change})
    assert isinstance(info.value, ValueError)
    (problem,) = info.value.problems  # one bad value, one problem
    assert problem.startswith(key) and str(info.value) == problem, problem
    assert shows in problem, problem  # the value (or the file) is shown
    for word in allowed:  # and what is allowed (for a choice: every allowed value)
        assert word in problem, problem


def test_every_bad_key_is_reported_in_one_error(tmp_path):
    root = make_folder(tmp_path / "data", n=4)
    bad = {
        "seed": -1,
        "crop": "auto",
        "box_jitter": 2.0,
        "colour": "blue",
        "split": {"folds": 1, "fold": 0},
        "preprocess": {**PRE, "sigma": -1.0, "intensity": "minmax", "grid": [1, 16, 16]},
        "images_dir": 3,
    }
    with pytest.raises(ConfigError) as info:
        build_dataset({**data_cfg(root, tmp_path), **bad})
    keys = [
        "data.seed",
        "data.crop",
        "data.box_jitter",
        "data.colour",
        "data.split.folds",
        "data.preprocess.sigma",
        "data.preprocess.intensity",
        "data.preprocess.grid",
        "data.images_dir",
    ]
    problems = info.value.problems
    assert sorted(p.split(":")[0] for p in problems) == sorted(keys), problems
    for p in problems:
        assert p in str(info.value)
    phantom = {
        "source": "phantom",
        "cache_dir": str(tmp_path / "cache"),
        "phantom": {"fatness": 1.0, "touch_fraction": 2.0},
        "preprocess": {**PRE, "window": [240, -160]},
    }
    with pytest.raises(ConfigError) as info:
        build_dataset(phantom)
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "data.phantom.fatness",
        "data.phantom.touch_fraction",
        "data.preprocess.window",
    ]


def test_keys_of_other_sources_are_ignored_and_only_unknown_keys_are_errors(tmp_path):
    """An experiment sets e.g. phantom sizes whichever source a user picks."""
    root = make_folder(tmp_path / "data", n=4)
    plain = build_dataset(data_cfg(root, tmp_path))
    others = {"phantom": {"n_cases": 3}, "label_pattern": "{case_id}.nii.gz"}
    with_others = build_dataset({**data_cfg(root, tmp_path), **others})
    assert with_others.case_ids == plain.case_ids and with_others.fingerprint == plain.fingerprint
    assert not hasattr(with_others.config, "phantom") and not hasattr(with_others.config, "label_pattern")
    msd = write_msd(tmp_path / "Task07", n=2)
    ds = build_dataset(
        data_cfg(msd, tmp_path, source="msd", manifest="cases.csv", images_dir="x", split={"folds": 2})
    )
    assert ds.case_ids == ["pancreas_000", "pancreas_001"]
    phantom = {
        "source": "phantom",
        "cache_dir": str(tmp_path / "cache"),
        "images_dir": "x",
        "manifest": "m.csv",
    }
    assert len(build_dataset({**phantom, "phantom": {"n_cases": 3}, "split": {"folds": 3}}).case_ids) == 3
    with pytest.raises(ConfigError, match=r"data\.label_patern: unknown key"):
        build_dataset({**data_cfg(root, tmp_path), "label_patern": "{case_id}.nii.gz"})


def test_a_validated_schema_is_accepted_as_is(tmp_path):
    from iunet_bench.core.schema import validate_group
    from iunet_bench.data.config import DataConfig, FolderData

    root = make_folder(tmp_path / "data", n=4)
    cfg = validate_group(DataConfig, data_cfg(root, tmp_path), "data")
    assert isinstance(cfg, FolderData)
    assert (cfg.split.folds, cfg.split.fold, cfg.images_dir) == (2, 0, "images")
    assert cfg.cache_folder == (tmp_path / "cache").resolve()
    ds = build_dataset(cfg)
    assert ds.config is cfg and ds.case_ids == build_dataset(data_cfg(root, tmp_path)).case_ids


# ---------------------------------------------------------------------- split, laziness, cache, fingerprint


def test_split_is_seeded_disjoint_and_the_folds_cover_every_case(tmp_path):
    base = {
        "source": "phantom",
        "seed": 0,
        "cache_dir": str(tmp_path),
        "phantom": {"n_cases": 10},
        "preprocess": PRE,
    }
    held = []
    for fold in range(3):
        ds = build_dataset({**base, "split": {"folds": 3, "fold": fold}})
        train, test = ds.split()
        assert set(train).isdisjoint(test) and sorted(train + test) == sorted(ds.case_ids)
        assert ds.split() == (train, test)
        held += test
    assert sorted(held) == sorted(ds.case_ids)  # every case is held out exactly once
    other = build_dataset({**base, "seed": 1, "split": {"folds": 3, "fold": 0}}).split()[1]
    first = build_dataset({**base, "split": {"folds": 3, "fold": 0}}).split()[1]
    assert other != first


def test_building_reads_nothing_and_the_phantom_fingerprint_generates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_module, "phantom_case", lambda *a: pytest.fail("generated a phantom"))
    base = {"source": "phantom", "seed": 0, "cache_dir": str(tmp_path), "split": {"folds": 2, "fold": 0}}
    a = build_dataset({**base, "phantom": {"n_cases": 4}, "preprocess": PRE})
    b = build_dataset({**base, "phantom": {"n_cases": 4, "noise_hu": 5.0}, "preprocess": PRE})
    c = build_dataset({**base, "phantom": {"n_cases": 4}, "preprocess": {**PRE, "sigma": 0.5}})
    assert len(a.case_ids) == 4 and len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3


def test_cache_hit_skips_preprocessing_and_a_change_misses(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data", n=2)
    first, failures = build_dataset(data_cfg(root, tmp_path)).volumes(["case0", "case1"])
    assert failures == []

    def refuse(*args):
        raise RuntimeError("preprocessed again")

    monkeypatch.setattr(dataset_module, "preprocess", refuse)  # a call now becomes a Failure
    again, failures = build_dataset(data_cfg(root, tmp_path)).volumes(["case0", "case1"])
    assert failures == []
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.label, b.label)
        assert (a.crop, a.case_shape, a.spacing) == (b.crop, b.case_shape, b.spacing)
        assert a.meta == b.meta
    # the box jitter and seed only matter for robot boxes: with the reference crop they are hits
    _, failures = build_dataset(data_cfg(root, tmp_path, box_jitter=0.3, seed=5)).volumes(["case0"])
    assert failures == []
    # another setting, or changed file content, is a miss (here: preprocessing is called, and fails)
    _, failures = build_dataset(data_cfg(root, tmp_path, preprocess={**PRE, "sigma": 0.5})).volumes(["case0"])
    assert len(failures) == 1 and "preprocessed again" in failures[0].error
    _, failures = build_dataset(data_cfg(root, tmp_path, crop="robot_box")).volumes(["case0"])
    assert len(failures) == 1 and "preprocessed again" in failures[0].error
    image, _ = volume_pair(5)
    write(root / "images" / "case1.nii.gz", image)
    _, failures = build_dataset(data_cfg(root, tmp_path)).volumes(["case0", "case1"])
    assert [f.case_id for f in failures] == ["case1"]
    # a damaged entry is made again, never trusted
    (entry,) = (p for p in (tmp_path / "cache").glob("case0-*") if p.is_dir())
    (entry / "volume.npz").write_bytes(b"not a volume")
    _, failures = build_dataset(data_cfg(root, tmp_path)).volumes(["case0"])
    assert len(failures) == 1 and "preprocessed again" in failures[0].error


def test_robot_box_crops_are_seeded_and_keyed_by_jitter_and_seed(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data", n=2)
    cfg = data_cfg(root, tmp_path, crop="robot_box", box_jitter=0.3)
    (a,), failures = build_dataset(cfg).volumes(["case0"])
    assert failures == [] and a.meta["box"] == "robot_box"
    (reference,), _ = build_dataset(data_cfg(root, tmp_path)).volumes(["case0"])
    assert reference.meta["box"] == "reference"
    calls = []
    real = dataset_module.preprocess
    monkeypatch.setattr(dataset_module, "preprocess", lambda *args: calls.append(args[3]) or real(*args))
    (again,), _ = build_dataset(cfg).volumes(["case0"])
    assert calls == [] and again.crop == a.crop  # a hit
    crops = {build_dataset({**cfg, "seed": s}).volumes(["case0"])[0][0].crop for s in range(1, 6)}
    build_dataset({**cfg, "box_jitter": 0.1}).volumes(["case0"])
    assert calls == ["robot_box"] * 6  # every other seed and jitter: made again
    assert len(crops | {a.crop}) > 1  # the seed moves the box


def test_fingerprint_follows_file_content(tmp_path):
    root = make_folder(tmp_path / "data", n=2, suffix=".mhd")
    fp = build_dataset(data_cfg(root, tmp_path)).fingerprint
    assert build_dataset(data_cfg(root, tmp_path)).fingerprint == fp
    raw = root / "images" / "case0.raw"
    data = bytearray(raw.read_bytes())
    data[100] ^= 0xFF  # the header is unchanged; the pixel data (a companion file) is not
    raw.write_bytes(bytes(data))
    assert build_dataset(data_cfg(root, tmp_path)).fingerprint != fp


def test_default_cache_lives_under_runs_of_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = {"source": "phantom", "seed": 0, "phantom": {"n_cases": 2, "shape": [8, 32, 32]}}
    ds = build_dataset({**cfg, "split": {"folds": 2, "fold": 0}, "preprocess": PRE})
    volumes, failures = ds.volumes(ds.case_ids[:1])
    assert failures == [] and len(volumes) == 1
    assert ds.config.cache_dir is None
    assert ds.config.cache_folder == (tmp_path / "runs" / "cache" / "preprocess").resolve()
    (entry,) = (p for p in (tmp_path / "runs" / "cache" / "preprocess").glob("phantom_000-*") if p.is_dir())
    assert entry.is_dir() and (entry / "volume.npz").is_file()


@pytest.mark.parametrize("group", ["phantom", "msd", "folder", "dicom"])
def test_every_data_group_file_composes_and_validates(compose, tmp_path, group):
    """The shipped conf/data/*.yaml files hold only known keys with valid values."""
    from omegaconf import OmegaConf

    root = make_folder(tmp_path / "data", n=2)
    if group == "msd":
        write_msd(root)
    if group == "dicom":
        for cid in ("a", "b"):
            (root / cid).mkdir()
    overrides = [f"data={group}", f"data.cache_dir={tmp_path / 'cache'}", "data.split.folds=2"]
    if group != "phantom":
        overrides.append(f"data.root={root}")
    ds = build_dataset(OmegaConf.to_container(compose(*overrides).data, resolve=True))
    assert len(ds.case_ids) >= 2 and ds.preprocess_config.window == (-160.0, 240.0)
    assert ds.preprocess_config.sigma == 0.75 and ds.preprocess_config.margin == 0.05  # the paper's values


# ---------------------------------------------------------------------- review fixes: cache folder, names, modality


def _raise(exc):
    raise exc


@pytest.mark.parametrize("where", ["under_a_file", "a_file", "read_only"])
def test_a_cache_dir_that_cannot_be_written_is_a_config_error(tmp_path, monkeypatch, where):
    root = make_folder(tmp_path / "data", n=2)
    (tmp_path / "plain").write_text("not a folder", encoding="utf-8")
    cache = {"under_a_file": tmp_path / "plain" / "cache", "a_file": tmp_path / "plain"}.get(where)
    if where == "read_only":
        cache = tmp_path / "ro"
        cache.mkdir(mode=0o500)
        if os.geteuid() == 0:  # root writes into read-only folders: make the write fail as it would
            monkeypatch.setattr(
                tempfile, "mkstemp", lambda **k: _raise(PermissionError(13, "Permission denied"))
            )
    with pytest.raises(ValueError, match=r"data\.cache_dir") as info:
        build_dataset(data_cfg(root, tmp_path, cache_dir=str(cache)))
    assert str(cache) in str(info.value)


def test_failed_cache_writes_warn_once_and_every_case_still_loads(tmp_path, monkeypatch):
    """A disk that fills up after the start: volumes and digests are computed, used and not stored."""
    root = make_folder(tmp_path / "data", n=3)
    fingerprint = build_dataset(data_cfg(root, tmp_path)).fingerprint

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "atomic_write", disk_full)  # file digests
    monkeypatch.setattr(dataset_module, "save_volume", disk_full)  # preprocessed volumes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_dataset(data_cfg(root, tmp_path, cache_dir=str(tmp_path / "full")))
        assert ds.fingerprint == fingerprint  # the content was hashed, not counted as missing
        volumes, failures = ds.volumes(ds.case_ids)
    assert failures == [] and [v.case_id for v in volumes] == ds.case_ids
    messages = [str(w.message) for w in caught]
    assert sum("preprocessed volumes" in m for m in messages) == 1, messages
    assert sum("file digests" in m for m in messages) == 1, messages
    assert all("data.cache_dir" in m and "No space left" in m for m in messages), messages
    assert not list((tmp_path / "full").rglob("*.npz"))
    assert [
        p.name for p in (tmp_path / "full").iterdir() if p.is_dir()
    ] == []  # no entry, no temporary folder


def test_files_that_cannot_be_hashed_change_the_fingerprint_and_fail_naming_the_file(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data", n=3)
    good = build_dataset(data_cfg(root, tmp_path, cache_dir=str(tmp_path / "c1"))).fingerprint
    locked = root / "images" / "case1.nii.gz"
    real = dataset_module.content_digest

    def digest(path, memo):
        if path == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, memo)

    monkeypatch.setattr(dataset_module, "content_digest", digest)
    (root / "labels" / "case2.nii.gz").unlink()
    ds = build_dataset(data_cfg(root, tmp_path, cache_dir=str(tmp_path / "c2")))
    assert ds.fingerprint != good  # said once, as each case's failure (tests/test_data_messages.py)
    errors = {f.case_id: f.error for f in ds.volumes(ds.case_ids)[1]}
    assert sorted(errors) == ["case1", "case2"]
    assert errors["case1"].startswith(f"case case1: {locked}: cannot be read (PermissionError")
    assert "no label file" in errors["case2"]


def test_a_missing_data_file_of_a_metaimage_header_is_named(tmp_path):
    root = make_folder(tmp_path / "data", n=2, suffix=".mhd")
    raw = root / "images" / "case0.raw"
    raw.unlink()
    ds = build_dataset(data_cfg(root, tmp_path))
    (f,) = ds.volumes(ds.case_ids)[1]
    assert f.case_id == "case0" and f"{raw}: file does not exist" in f.error
    with pytest.raises(CaseError, match="does not exist") as info:
        ds.load_case("case0")
    assert info.value.path == str(raw)


def test_two_files_for_one_case_name_fail_that_case_only_naming_both(tmp_path):
    root = make_folder(tmp_path / "data", n=3)
    image, label = volume_pair(0)
    write(root / "images" / "case0.mha", image)  # beside case0.nii.gz
    write(root / "labels" / "case2.nrrd", label)  # beside case2.nii.gz
    ds = build_dataset(data_cfg(root, tmp_path))
    assert ds.case_ids == ["case0", "case1", "case2"]
    volumes, failures = ds.volumes(ds.case_ids)
    assert [v.case_id for v in volumes] == ["case1"]
    errors = {f.case_id: f.error for f in failures}
    assert "2 image files share the case name 'case0'" in errors["case0"]
    assert str(root / "images" / "case0.mha") in errors["case0"]
    assert str(root / "images" / "case0.nii.gz") in errors["case0"]
    assert "2 label files" in errors["case2"] and str(root / "labels" / "case2.nrrd") in errors["case2"]
    assert sum("share the case name" in n for n in ds.notes) == 2


def test_a_manifest_listing_a_case_twice(tmp_path):
    root = make_folder(tmp_path / "data", n=3)
    rows = ["case_id,image,label"] + [f"p{i},images/case{i}.nii.gz,labels/case{i}.nii.gz" for i in range(3)]
    rows += ["p0,images/case0.nii.gz,labels/case0.nii.gz", "p1,images/case2.nii.gz,labels/case2.nii.gz"]
    (root / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ds = build_dataset(data_cfg(root, tmp_path, manifest="cases.csv"))
    assert ds.case_ids == ["p0", "p1", "p2"]
    assert any("p0" in n and "kept once" in n for n in ds.notes)
    volumes, failures = ds.volumes(ds.case_ids)
    assert [v.case_id for v in volumes] == ["p0", "p2"]
    (f,) = failures
    assert f.case_id == "p1" and "case1.nii.gz" in f.error and "case2.nii.gz" in f.error


def test_auto_intensity_is_refused_for_folder_sources(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    with pytest.raises(ValueError, match=r"data\.preprocess\.intensity: auto needs the images' modality"):
        build_dataset(data_cfg(root, tmp_path, preprocess={**PRE, "intensity": "auto"}))


def write_series(folder, array, modality, uid):
    """A small DICOM series, one file per slice, with the tags a series reader needs."""
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((0.8, 0.8, 2.0))
    folder.mkdir(parents=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(img.GetDepth()):
        sl = img[:, :, k]
        for tag, value in (
            ("0020|000e", uid + ".2"),
            ("0020|000d", uid + ".3"),
            ("0008|0018", f"{uid}.4.{k}"),
            ("0020|0013", str(k)),
            ("0020|0032", "\\".join(f"{c:.4f}" for c in img.TransformIndexToPhysicalPoint((0, 0, k)))),
            ("0020|0037", "1\\0\\0\\0\\1\\0"),
            ("0018|0050", "2.0"),
            ("0008|0060", modality),
        ):
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(sl)
    return img


@pytest.mark.parametrize(
    ("modalities", "resolved"), [(("CT", "CT"), "window"), (("MR", "MR"), "zscore"), (("CT", "MR"), "zscore")]
)
def test_auto_intensity_reads_the_dicom_modality_tag(tmp_path, modalities, resolved):
    root = tmp_path / "dicom"
    for i, modality in enumerate(modalities):
        image, label = volume_pair(i)
        img = write_series(root / f"s{i}", image, modality, f"1.2.826.0.1.3680043.2.1125.{i + 7}")
        lab = sitk.GetImageFromArray(label)
        lab.CopyInformation(img)
        sitk.WriteImage(lab, str(root / f"s{i}.nii.gz"))
        (root / f"s{i}" / "0_notes.txt").write_text(
            "not DICOM: the modality comes from the next file", encoding="utf-8"
        )
    cfg = data_cfg(root, tmp_path, source="dicom", preprocess={**PRE, "intensity": "auto"})
    ds = build_dataset(cfg)
    assert ds.modalities == modalities
    assert ds.preprocess_config.intensity == resolved
    if resolved == "window":
        volumes, failures = ds.volumes(ds.case_ids)
        assert failures == [] and volumes[0].meta["intensity"]["mode"] == "window"


# ---------------------------------------------------------------------- what the data room let through


def test_a_symlink_loop_in_msd_images_fails_only_its_case_naming_the_path(tmp_path):
    root = write_msd(tmp_path / "Task07", n=3)
    loop = root / "imagesTr" / "pancreas_001.nii.gz"
    loop.unlink()
    loop.symlink_to(loop)  # points at itself
    ds = build_dataset(data_cfg(root, tmp_path, source="msd"))  # the listing itself does not crash
    volumes, failures = ds.volumes(ds.case_ids)
    assert [v.case_id for v in volumes] == ["pancreas_000", "pancreas_002"]
    (f,) = failures
    assert f.case_id == "pancreas_001" and str(loop) in f.error and "loop" in f.error


def test_a_symlink_loop_in_a_folder_layout_is_named_not_a_missing_image(tmp_path):
    root = make_folder(tmp_path / "data", n=3)
    loop = root / "images" / "case1.nii.gz"
    loop.unlink()
    loop.symlink_to(loop)
    ds = build_dataset(data_cfg(root, tmp_path))
    volumes, failures = ds.volumes(ds.case_ids)
    assert [v.case_id for v in volumes] == ["case0", "case2"]
    (f,) = failures
    assert f.case_id == "case1" and str(loop) in f.error and "loop" in f.error
    assert "no image file" not in f.error


def test_msd_without_modality_under_auto_is_a_config_error_naming_the_key(tmp_path):
    root = write_msd(tmp_path / "TaskMR", labels={"0": "bg", "1": "organ"}, modality="MRI", values=(1,))
    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    del meta["modality"]  # the trial: an MR set was windowed as CT and 34-46% of its voxels saturated
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    ds = build_dataset(data_cfg(root, tmp_path, source="msd", preprocess={**PRE, "intensity": "auto"}))
    with pytest.raises(ConfigError) as err:
        _ = ds.preprocess_config
    assert "data.preprocess.intensity" in str(err.value) and "dataset.json" in str(err.value)
    explicit = build_dataset(
        data_cfg(root, tmp_path, source="msd", preprocess={**PRE, "intensity": "zscore"})
    )
    volumes, failures = explicit.volumes(explicit.case_ids)
    assert failures == [] and {v.meta["intensity"]["mode"] for v in volumes} == {"zscore"}


def test_implausible_cases_fail_alone_naming_the_check_or_warn(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    image, label = volume_pair(5)
    write(root / "images" / "huge.nii.gz", image, spacing=(0.8, 0.8, 1e6))
    write(root / "labels" / "huge.nii.gz", label, spacing=(0.8, 0.8, 1e6))
    write(root / "images" / "flat.nii.gz", np.full(SHAPE, 40, np.int16))
    write(root / "labels" / "flat.nii.gz", label)
    write(root / "images" / "whole.nii.gz", image)
    write(root / "labels" / "whole.nii.gz", np.ones(SHAPE, np.uint8))
    speck = np.zeros(SHAPE, np.uint8)
    speck[5, 12, 14] = 1  # one voxel: a few on the model grid at most
    write(root / "images" / "speck.nii.gz", image)
    write(root / "labels" / "speck.nii.gz", speck)
    keys = {
        "huge": "data.checks.spacing_mm",
        "flat": "data.checks.min_contrast",
        "whole": "data.checks.max_label_share",
        "speck": "data.checks.min_label_voxels",
    }
    ds = build_dataset(data_cfg(root, tmp_path))
    volumes, failures = ds.volumes(ds.case_ids)
    assert [v.case_id for v in volumes] == ["case0", "case1"]
    errors = {f.case_id: f.error for f in failures}
    assert sorted(errors) == sorted(keys)
    for cid, key in keys.items():
        assert key in errors[cid] and f"case {cid}" in errors[cid], errors[cid]
    lenient = build_dataset(data_cfg(root, tmp_path, checks={"action": "warn"}))
    with pytest.warns(RuntimeWarning, match="data.checks"):
        volumes, failures = lenient.volumes(lenient.case_ids)
    assert failures == [] and len(volumes) == 6


def test_a_manifest_path_outside_the_root_fails_its_case_and_a_missing_column_is_named(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    make_folder(tmp_path / "elsewhere", n=1)  # a real file outside the root: read, it would load
    rows = ["case_id,image,label", "p0,images/case0.nii.gz,labels/case0.nii.gz"]
    rows.append("p1,../elsewhere/images/case0.nii.gz,labels/case1.nii.gz")
    (root / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ds = build_dataset(data_cfg(root, tmp_path, manifest="cases.csv"))
    volumes, failures = ds.volumes(ds.case_ids)
    assert [v.case_id for v in volumes] == ["p0"]
    (f,) = failures
    assert f.case_id == "p1" and "outside data.root" in f.error and "elsewhere" in f.error
    (root / "cases.csv").write_text("case_id,image\np0,images/case0.nii.gz\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no column 'label'"):
        build_dataset(data_cfg(root, tmp_path, manifest="cases.csv"))
