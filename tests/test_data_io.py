"""Label values and masks, the digest memo and the cache key, on small arrays and files (fast)."""

import os

import numpy as np
import pytest

import iunet_bench.core.files as project_cache
import iunet_bench.data.cache as cache_module
import iunet_bench.data.dataset as dataset_module
import iunet_bench.data.io as io_module
from iunet_bench.data import build_dataset
from iunet_bench.data.cache import content_digest, volume_cache
from iunet_bench.data.io import CaseError, label_to_mask, label_values


def reference_mask(label, allowed, foreground):
    """The obvious implementation: what label_to_mask must agree with."""
    values = set(np.unique(label).astype(np.int64).tolist())
    assert allowed is None or values <= set(allowed)
    return np.isin(label, foreground).astype(np.uint8), sorted(values)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int32", "int64", "float32", "float64"])
@pytest.mark.parametrize("chunk", [7, 1 << 22])  # a tiny chunk crosses many chunk boundaries
def test_label_values_and_mask_agree_with_np_unique_for_every_voxel_type(monkeypatch, dtype, chunk):
    monkeypatch.setattr(io_module, "_CHUNK", chunk)
    rng = np.random.default_rng(0)
    label = rng.choice([0, 1, 2, 5], size=(5, 6, 7), p=[0.6, 0.2, 0.1, 0.1]).astype(dtype)
    if np.dtype(dtype).kind != "u":
        label[0, 0, :3] = -3  # negative values (allowed below)
    for allowed, foreground in [((-3, 0, 1, 2, 5), (1,)), (None, (2, 5)), (None, (1,))]:
        expected, values = reference_mask(label, allowed, foreground)
        assert label_values(label).tolist() == values
        mask = label_to_mask(label, allowed, foreground, "c", "p")
        assert mask.dtype == np.uint8 and mask.shape == label.shape
        np.testing.assert_array_equal(mask, expected)


def test_negative_values_never_become_foreground():
    """With allowed=None and foreground [1], a -1 voxel must not turn into 255 (or 1)."""
    label = np.zeros((3, 4, 5), np.int16)
    label[0, 0, 0], label[1, 1, 1] = -1, 1
    mask = label_to_mask(label, None, (1,), "c", "p")
    assert mask.max() == 1 and mask.sum() == 1 and mask[0, 0, 0] == 0


def test_labels_spread_over_a_wide_range_are_counted_exactly():
    label = np.zeros((4, 5, 6), np.int32)
    label[0, 0, 0], label[1, 0, 0], label[2, 0, 0] = -7, 3, 5_000_000  # span > the bincount limit
    assert label_values(label).tolist() == [-7, 0, 3, 5_000_000]
    np.testing.assert_array_equal(label_to_mask(label, None, (3,), "c", "p"), label == 3)


@pytest.mark.parametrize(
    ("value", "words"),
    [(0.5, "non-integer"), (np.nan, "non-integer"), (np.inf, "non-integer"), (7.0, "outside the mapping")],
)
def test_bad_float_labels_are_case_errors(value, words):
    label = np.zeros((3, 4, 5), np.float32)
    label[1, 1, 1], label[2, 2, 2] = 1.0, value
    with pytest.raises(CaseError, match=words) as info:
        label_to_mask(label, (0, 1), (1,), "c7", "lab.nii.gz")
    assert str(info.value).startswith("case c7: lab.nii.gz: ")


def test_an_empty_label_is_a_case_error():
    with pytest.raises(CaseError, match="empty"):
        label_to_mask(np.zeros((3, 4, 5), np.float64), (0, 1), (1,), "c", "p")


def test_digest_memo_sees_a_same_size_rewrite_that_keeps_the_mtime(tmp_path):
    """The memo key holds size, mtime, ctime and inode: a rewrite that restores the mtime still misses."""
    f = tmp_path / "a.nii.gz"
    f.write_bytes(b"A" * 1000)
    memo = tmp_path / "digests"
    first = content_digest(f, memo)
    st = os.stat(f)
    tmp = tmp_path / "new"
    tmp.write_bytes(b"B" * 1000)  # same size
    os.replace(tmp, f)  # another inode, a new ctime
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old mtime
    assert os.stat(f).st_mtime_ns == st.st_mtime_ns and os.stat(f).st_size == st.st_size
    second = content_digest(f, memo)
    assert second != first and second == content_digest(f, None)


@pytest.fixture
def fresh_code_digest():
    """code_digest is computed once per process: forget it around a test that fakes an edit."""
    project_cache.code_digest.cache_clear()
    yield
    project_cache.code_digest.cache_clear()


def edited(monkeypatch, module: str) -> None:
    """Pretend the source file of `module` was edited (a comment added) since the cache was written."""
    real = project_cache._source
    monkeypatch.setattr(
        project_cache, "_source", lambda name: real(name) + b"\n# edited\n" if name == module else real(name)
    )
    project_cache.code_digest.cache_clear()


def test_the_data_code_and_libraries_are_in_every_volume_key():
    assert {
        "iunet_bench.data.preprocess",
        "iunet_bench.data.io",
        "iunet_bench.data.nifti",
        "iunet_bench.data.case",
        "iunet_bench.data.phantom",
        "iunet_bench.data.cache",
        "iunet_bench.data.dataset",
        "simulators.box",
    } <= set(cache_module.CODE_MODULES)
    assert {"numpy", "scipy", "SimpleITK"} <= set(cache_module.LIBRARIES)
    for name in cache_module.CODE_MODULES:
        assert project_cache._source(name), name  # a real source file is hashed, not just the name


@pytest.mark.parametrize("module", cache_module.CODE_MODULES)
def test_volume_keys_follow_the_source_of_the_code_that_computes_volumes(
    tmp_path, monkeypatch, fresh_code_digest, module
):
    cache = volume_cache(tmp_path)
    payload = {"content": "abc", "preprocess": {"sigma": 0.75}, "mapping": {"values": [0, 1]}}
    key = cache.key(payload)
    assert cache.key(payload) == key and volume_cache(tmp_path / "elsewhere").key(payload) == key
    assert cache.key({**payload, "content": "abd"}) != key
    assert cache.key({**payload, "preprocess": {"sigma": 0.5}}) != key
    edited(monkeypatch, module)  # an edit of a listed module, even a comment
    assert cache.key(payload) != key
    monkeypatch.undo()
    project_cache.code_digest.cache_clear()
    assert cache.key(payload) == key


def test_volume_keys_follow_the_library_versions(tmp_path, monkeypatch, fresh_code_digest):
    cache = volume_cache(tmp_path)
    key = cache.key({"content": "abc"})
    real = project_cache._version
    monkeypatch.setattr(project_cache, "_version", lambda lib: "0.0" if lib == "scipy" else real(lib))
    project_cache.code_digest.cache_clear()
    assert cache.key({"content": "abc"}) != key


def test_an_edit_of_the_data_code_recomputes_a_cached_volume(tmp_path, monkeypatch, fresh_code_digest):
    cfg = {
        "source": "phantom",
        "seed": 0,
        "cache_dir": str(tmp_path / "cache"),
        "phantom": {"n_cases": 2, "shape": [8, 32, 32]},
        "split": {"folds": 2, "fold": 0},
        "preprocess": {"grid": [8, 16, 16]},
    }
    (first,), failures = build_dataset(cfg).volumes(["phantom_000"])
    assert failures == []
    entries = sorted(p.name for p in (tmp_path / "cache").glob("phantom_000-*") if p.is_dir())
    assert len(entries) == 1 and (tmp_path / "cache" / entries[0] / "volume.npz").is_file()
    calls = []
    real = dataset_module.preprocess

    def counted(*args, **kwargs):
        calls.append(args[0].case_id)
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "preprocess", counted)
    (again,), failures = build_dataset(cfg).volumes(["phantom_000"])
    assert failures == [] and calls == []  # unchanged code: the cached volume is used
    np.testing.assert_array_equal(again.image, first.image)
    edited(monkeypatch, "iunet_bench.data.preprocess")
    (recomputed,), failures = build_dataset(cfg).volumes(["phantom_000"])
    assert failures == [] and calls == ["phantom_000"]  # an edited data module: made again, not served
    np.testing.assert_array_equal(recomputed.image, first.image)
    assert len([p for p in (tmp_path / "cache").glob("phantom_000-*") if p.is_dir()]) == 2
