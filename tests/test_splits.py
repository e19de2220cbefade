"""Splits a researcher names: a splits file in nnU-Net's style, or case lists (no image is read, no
TensorFlow)."""

import json

import pytest

from iunet_bench.core.schema import ConfigError
from iunet_bench.data import build_dataset
from tests.conftest import group


def dataset(*overrides):
    return build_dataset(group("data", "data.phantom.n_cases=6", *overrides))


def test_case_lists_hold_out_exactly_the_named_cases():
    ids = dataset().case_ids
    train, test = dataset(f"data.split.test=[{ids[4]},{ids[1]}]").split()
    assert test == [ids[1], ids[4]]  # in the listing's order
    assert train == [ids[0], ids[2], ids[3], ids[5]]
    train, test = dataset(f"data.split.test=[{ids[0]}]", f"data.split.train=[{ids[2]},{ids[3]}]").split()
    assert (train, test) == ([ids[2], ids[3]], [ids[0]])


def test_a_splits_file_in_nnunet_style_picks_its_fold(tmp_path):
    ids = dataset().case_ids
    folds = [{"train": ids[2:], "val": ids[:2]}, {"train": ids[:4], "val": ids[4:]}]
    path = tmp_path / "splits_final.json"
    path.write_text(json.dumps(folds))
    for fold, entry in enumerate(folds):
        train, test = dataset(f"data.split.file={path}", f"data.split.fold={fold}").split()
        assert (train, test) == (entry["train"], entry["val"])
    # the held-out cases decide the baseline and the sessions: another split is another data fingerprint
    prints = {dataset(f"data.split.file={path}", f"data.split.fold={k}").fingerprint for k in (0, 1)}
    assert len(prints | {dataset().fingerprint}) == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.split.test=[phantom_999]"],
            "data.split.test/train: case ids not in the data set: phantom_999",
        ),
        (["data.split.train=[a]"], "data.split.train: needs data.split.test"),
        (["data.split.test=[a]", "data.split.train=[a]"], "cases both in train and test: ['a']"),
        (["data.split.test=[]"], "data.split.test: must list at least one case id"),
        (
            ["data.split.file=/no/such/splits.json"],
            "data.split.file: /no/such/splits.json is not an existing file",
        ),
    ],
)
def test_a_bad_named_split_is_refused_naming_the_key(overrides, message):
    with pytest.raises((ConfigError, ValueError)) as err:
        dataset(*overrides)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot be read as JSON"),
        ('{"train": [], "val": []}', 'expected a list of {"train": [case ids], "val": [case ids]}'),
        ("[]", "data.split.fold: 0 is not an entry of"),
        (
            '[{"train": ["phantom_000"], "val": ["phantom_000"]}]',
            "cases both trained on and held out: phantom_000",
        ),
        ('[{"train": ["phantom_000"], "val": ["nope"]}]', "case ids not in the data set: nope"),
    ],
)
def test_a_bad_splits_file_is_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "splits_final.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        dataset(f"data.split.file={path}")
    assert message in str(err.value) and "data.split" in str(err.value)
