"""The configuration reference's tables (docs/reference/configuration.md), generated from the schemas (one
generator for every group).

    python -m iunet_bench.tasks.reference          # rewrite the tables in docs/reference/configuration.md
    python -m iunet_bench.tasks.reference --check  # exit 1 if the page differs (tests/test_docs.py checks it)

A table stands in the page between `<!-- config-table: NAME -->` and `<!-- /config-table -->`; the text
around the tables is written by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"


def tables() -> dict[str, str]:
    from iunet_bench.core.schema_tables import markdown_table
    from iunet_bench.data.config import DataConfig
    from iunet_bench.interactive.config import InteractConfig
    from iunet_bench.models.config import ModelConfig
    from iunet_bench.session.config import ProtocolConfig, SessionConfig
    from iunet_bench.tasks.config import JobConfig
    from iunet_bench.tasks.observers_config import ObserversConfig
    from iunet_bench.tracking.tracker import TrackingConfig
    from iunet_bench.train.config import TrainConfig
    from simulators.config import SimulatorConfig

    top = tuple(k for k, f in JobConfig.model_fields.items() if not f.is_required() and "." not in k)
    scalars = tuple(
        k
        for k in top
        if k
        not in (
            "session",
            "protocol",
            "observers",
            "data",
            "model",
            "train",
            "simulator",
            "interact",
            "tracking",
        )
    )
    return {
        "job": markdown_table(JobConfig, "", only=scalars),
        "session": markdown_table(SessionConfig, "session."),
        "protocol": markdown_table(ProtocolConfig, "protocol."),
        "observers": markdown_table(ObserversConfig, "observers."),
        "model": markdown_table(ModelConfig, "model."),
        "train": markdown_table(TrainConfig, "train."),
        "tracking": markdown_table(TrackingConfig, "tracking."),
        "data": markdown_table(DataConfig, "data."),
        "simulator": markdown_table(SimulatorConfig, "simulator."),
        "interact": markdown_table(InteractConfig, "interact."),
    }


_BLOCK = re.compile(r"(<!-- config-table: (\w+) -->\n)(.*?)(<!-- /config-table -->)", re.S)


def render(text: str) -> str:
    """`text` with every config-table block replaced by its generated table."""
    generated = tables()

    def replace(m: re.Match) -> str:
        name = m.group(2)
        if name not in generated:
            raise KeyError(f"{PAGE.name} names an unknown config table {name!r}; known: {sorted(generated)}")
        return m.group(1) + generated[name] + m.group(4)

    return _BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iunet_bench.tasks.reference", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help=f"only check; exit 1 when {PAGE.name} differs")
    args = parser.parse_args(argv)
    text = PAGE.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print(f"{PAGE} is out of date: run python -m iunet_bench.tasks.reference")
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
