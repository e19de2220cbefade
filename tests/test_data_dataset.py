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
    with pytest.raises(ValueError, match=r"no image/label pairs.*images"):
        build_dataset(data_cfg(root, tmp_path))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"source": "nifti"}, "data.source"),
        ({"root": None}, "data.root"),
        ({"root": "/no/such/folder"}, "data.root"),
        ({"split": {"folds": 1, "fold": 0}}, "data.split.folds"),
        ({"split": {"folds": 3, "fold": 3}}, "data.split.fold"),
        ({"split": {"folds": 9, "fold": 0}}, "data.split.folds"),  # more folds than cases
        ({"preprocess": {**PRE, "grid": [8, 16]}}, "data.preprocess.grid"),
        ({"preprocess": {**PRE, "window": [240, -160]}}, "data.preprocess.window"),
        ({"preprocess": {**PRE, "intensity": "minmax"}}, "data.preprocess.intensity"),
        ({"preprocess": {**PRE, "orientation": "XYZ"}}, "data.preprocess.orientation"),
        ({"preprocess": {**PRE, "label_interpolation": "cubic"}}, "data.preprocess.label_interpolation"),
        ({"preprocess": {**PRE, "sigmaa": 1.0}}, "data.preprocess.sigmaa"),
        ({"crop": "auto"}, "data.crop"),
        ({"colour": "blue"}, "data.colour"),
        ({"label_pattern": "{case_id}.nii.gz"}, "data.label_pattern"),  # a key of another source
        ({"foreground": [0]}, "data.foreground"),
        ({"manifest": "missing.csv"}, "data.manifest"),
    ],
)
def test_config_errors_name_the_key_before_any_image_is_read(tmp_path, monkeypatch, change, key):
    root = make_folder(tmp_path / "data", n=4)
    monkeypatch.setattr(dataset_module, "read_case", lambda *a, **k: pytest.fail("read an image"))
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as info:
        build_dataset({**data_cfg(root, tmp_path), **change})
    message = str(info.value)
    if key in ("data.source", "data.crop", "data.preprocess.intensity"):
        assert "[" in message  # the allowed values are listed


def test_phantom_sizes_set_by_an_experiment_are_ignored_for_real_sources(tmp_path):
    root = make_folder(tmp_path / "data", n=4)
    plain = build_dataset(data_cfg(root, tmp_path))
    with_phantom = build_dataset({**data_cfg(root, tmp_path), "phantom": {"n_cases": 3}})
    assert with_phantom.case_ids == plain.case_ids


def test_unknown_phantom_key_and_bad_phantom_values(tmp_path):
    base = {"source": "phantom", "seed": 0, "split": {"folds": 2, "fold": 0}, "preprocess": PRE}
    with pytest.raises(ValueError, match=r"data\.phantom\.fatness"):
        build_dataset({**base, "phantom": {"fatness": 1.0}})
    with pytest.raises(ValueError, match=r"data\.phantom\.touch_fraction"):
        build_dataset({**base, "phantom": {"touch_fraction": 2.0}})


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
    # another setting, or changed file content, is a miss (here: preprocessing is called, and fails)
    _, failures = build_dataset(data_cfg(root, tmp_path, preprocess={**PRE, "sigma": 0.5})).volumes(["case0"])
    assert len(failures) == 1 and "preprocessed again" in failures[0].error
    image, _ = volume_pair(5)
    write(root / "images" / "case1.nii.gz", image)
    _, failures = build_dataset(data_cfg(root, tmp_path)).volumes(["case0", "case1"])
    assert [f.case_id for f in failures] == ["case1"]


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
    assert list((tmp_path / "runs" / "cache" / "preprocess").glob("phantom_000-*.npz"))


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

    monkeypatch.setattr(cache_module, "_atomic_write", disk_full)
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


def test_the_fingerprint_says_which_files_cannot_be_hashed(tmp_path, monkeypatch):
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
    with pytest.warns(RuntimeWarning, match="2 case") as record:
        assert ds.fingerprint != good
    message = str(record[0].message)
    assert f"case case1: {locked}: cannot be read (PermissionError" in message
    assert "case case2" in message and "no label file" in message
    errors = {f.case_id: f.error for f in ds.volumes(ds.case_ids)[1]}
    assert sorted(errors) == ["case1", "case2"] and str(locked) in errors["case1"]


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
    with pytest.warns(RuntimeWarning, match="share the case name"):
        assert ds.fingerprint


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
