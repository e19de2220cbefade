"""The documentation: the configuration page's tables are the schema's (generated) and document every key of
every preset; every relative link of README.md and docs/ points at a file that exists (and, from the README,
at a heading that exists; `mkdocs build --strict` checks the anchors inside docs/); the quick start's sample
output is the same in the README and the getting-started page."""

import re
import unicodedata
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from iunet_bench.tasks import reference as docs
from tests.conftest import CONF, ROOT, composed

PAGE_PATH = ROOT / "docs" / "reference" / "configuration.md"
PAGE = PAGE_PATH.read_text(encoding="utf-8")
GROUPS = ["data", "model", "train", "simulator", "interact", "tracking"]
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


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


_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def links(path: Path) -> list[str]:
    """The link targets of a Markdown file, outside fenced code blocks and inline code."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    return _LINK.findall(text)


def slugify(heading: str) -> str:
    """A heading's id as Python-Markdown's toc extension (MkDocs) makes it."""
    value = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def anchors(path: Path) -> set[str]:
    """The heading ids of a Markdown file (inline code and emphasis marks removed first)."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.M):
        explicit = re.search(r"\{ *#([\w-]+) *\}$", heading)
        out.add(explicit.group(1) if explicit else slugify(re.sub(r"[`*]", "", heading)))
    return out


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file(path):
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a web address, or an anchor on the same page (mkdocs --strict checks those in docs/)
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve()
        if not resolved.exists():
            broken.append(f"{target} (no file {resolved})")
        elif (
            anchor
            and path.name == "README.md"
            and resolved.suffix == ".md"
            and anchor not in anchors(resolved)
        ):
            broken.append(f"{target} (no heading #{anchor} in {file})")
    assert not broken, f"{path.relative_to(ROOT)} links to what is not there: {broken}"


def test_every_docs_page_is_in_the_mkdocs_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages and all(f": {page}\n" in nav for page in pages), sorted(p for p in pages if p not in nav)


def test_the_quick_start_sample_is_the_same_in_the_readme_and_getting_started():
    def sample(path: Path) -> str:
        found = re.search(r"^```\nround +DSC.*?^```", path.read_text(encoding="utf-8"), re.S | re.M)
        assert found, f"{path.name} has no sample output"
        return found.group(0)

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"## Quick start\n\n```bash\n.*?```\n\n.*?\n\n```\nround", readme, re.S)
    assert sample(ROOT / "README.md") == sample(ROOT / "docs" / "getting-started.md"), (
        "the quick start's sample output differs between README.md and docs/getting-started.md"
    )


def test_the_readme_keeps_the_command_ci_runs_and_stays_short():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "python -m pytest -q -n auto --maxprocesses 4"
    assert command in readme and command in ci
    assert len(readme.encode()) <= 12 * 1024, "README.md is the front door: move the detail into docs/"


def test_every_test_the_faults_table_names_exists():
    """docs/reference/faults.md pairs each fault with the test that shows it: each must exist."""
    import re

    text = (ROOT / "docs" / "reference" / "faults.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(named) >= 20
    for path, name in named:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(", source, re.M), (
            f"faults.md names {path}::{name}, which is not there"
        )
