"""python -m iunet_bench.models summary [OVERRIDES...]: the configured network's groups, layers, parameters
and multiply-adds per volume (`models.summary`). A command-line entry: it composes the job's configuration,
so it ranks with the job (tests/test_layout.py), above the models room it reports on."""

from __future__ import annotations

import sys

from iunet_bench.models.summary import USAGE, format_summary, summarize


def main(argv: list[str]) -> int:
    import os
    import sys

    if not argv or argv[0] != "summary" or any(a in ("-h", "--help") for a in argv):
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from iunet_bench.core.schema import ConfigError
    from iunet_bench.tasks.config import compose_config

    overrides = list(argv[1:])
    if not any(o.lstrip("+~").startswith("interact") for o in overrides):
        # the summary fine-tunes nothing: a model whose groups differ from the default `interact.trainable`
        # (dilated_fcn, keras) must not be refused for it
        overrides.append("interact=paste")
    try:
        config = compose_config(overrides, note=sys.stderr)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if config.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    from iunet_bench.models import build_model

    grid = config.data.preprocess.grid
    try:
        model = build_model(grid, config.model)
    except ValueError as exc:
        print(f"model error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summarize(model, grid)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
