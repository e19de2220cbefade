"""`python -m iunet_bench [overrides]`: one benchmark job (or a multirun with `+sweep=...`)."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

import hydra
from omegaconf import DictConfig

from iunet_bench.benchmark import ConfigError, format_table, run


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        summary = run(cfg)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(format_table(summary))
    for f in summary.failures:
        print(f"FAILED case {f['case_id']} ({f['stage']}): {f['error']}", file=sys.stderr)
    print(
        f"MLflow run {summary.run_id}. See all runs with:\n  mlflow ui --backend-store-uri {cfg.tracking.uri}"
    )
    return summary.metrics.get("dsc_final")


if __name__ == "__main__":
    main()
