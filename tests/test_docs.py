"""The configuration page's tables are the schema's (generated), and document every key of every preset."""

import re

import pytest
from omegaconf import OmegaConf

from iunet_bench.tasks import reference as docs
from tests.conftest import CONF, ROOT, composed

PAGE_PATH = ROOT / "docs" / "reference" / "configuration.md"
PAGE = PAGE_PATH.read_text(encoding="utf-8")
GROUPS = ["data", "model", "train", "simulator", "interact", "tracking"]


def leaves(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def documented(key: str) -> bool:
    return re.search(rf"\| `{re.escape(key)}` \|", PAGE) is not None


def test_the_generator_writes_the_configuration_page():
    assert docs.PAGE == PAGE_PATH


def test_configuration_tables_are_generated_from_the_schema():
    assert docs.render(PAGE) == PAGE, f"{PAGE_PATH} is out of date: run python -m iunet_bench.tasks.reference"
    assert len(re.findall(r"<!-- config-table: \w+ -->", PAGE)) == len(docs.tables())
    assert docs.main(["--check"]) == 0


@pytest.mark.parametrize("group", GROUPS)
def test_every_key_of_every_preset_is_in_a_configuration_table(group):
    presets = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert presets
    missing = set()
    for preset in presets:
        cfg = OmegaConf.to_container(composed(f"{group}={preset}")[group], resolve=False)
        missing |= {f"{group}.{k}" for k in leaves(cfg) if not documented(f"{group}.{k}")}
    assert not missing, f"undocumented in {PAGE_PATH.name}: {sorted(missing)}"


def test_top_level_and_session_keys_are_in_a_configuration_table():
    cfg = OmegaConf.to_container(composed(), resolve=False)
    keys = [k for k in leaves({k: v for k, v in cfg.items() if k not in GROUPS})]
    missing = [k for k in keys if not documented(k)]
    assert keys and not missing, f"undocumented in {PAGE_PATH.name}: {missing}"
