"""Job-level configuration checks: every bad value stops before any compute, naming its key."""

import subprocess
import sys

import pytest

from iunet_bench.benchmark import ConfigError, validate
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("seed=abc", "seed"),
        ("session.rounds=true", "session.rounds"),
        ("session.rounds=-1", "session.rounds"),
        ("session.max_cases=abc", "session.max_cases"),
        ("session.target_dsc=1.5", "session.target_dsc"),
        ("session.pictures=-1", "session.pictures"),
        ("progress=maybe", "progress"),
        ("device=tpu", "device"),
        ("precision=float16", "precision"),
        ("model.convs_per_level=0", "model.convs_per_level"),
        ("model.depth=0", "model.depth"),
        ("model.norm=instance", "model.norm"),
        ("model.pool_z_levels=[5]", "model.pool_z_levels"),
        ("data.preprocess.grid=[10,48,48]", "data.preprocess.grid"),
        ("train.steps=abc", "train.steps"),
        ("train.augment.hu_per_unit=0", "train.augment.hu_per_unit"),
        ("+train.augment.flip=1", "train.augment.flip"),
        ("tracking.uri=runs/mlflow.db", "tracking.uri"),
        ("tracking.experiment=''", "tracking.experiment"),
        ("interact.trainable=[nosuchgroup]", "interact.trainable"),
        ("interact.geodesic.threshold=1.5", "interact.geodesic.threshold"),
        ("simulator.policy.region=everywhere", "simulator.policy.region"),
        ("data.split.fold=7", "data.split.fold"),
    ],
)
def test_bad_values_name_their_key(compose, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(compose(override))


def test_the_defaults_and_every_experiment_validate_without_importing_tensorflow():
    code = (
        "import sys\n"
        "from tests.conftest import composed\n"
        "from iunet_bench.benchmark import validate\n"
        "for o in [(), ('experiment=smoke',), ('experiment=paper',), ('+sweep=layers',)]:\n"
        "    assert validate(composed(*o))['dataset'].case_ids\n"
        "assert 'tensorflow' not in sys.modules, 'validation imported TensorFlow'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
