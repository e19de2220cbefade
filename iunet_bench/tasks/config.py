"""The job's configuration: one typed schema, composed of the rooms' own, validated once.

    config = load_config(OmegaConf.to_container(hydra_cfg, resolve=True))   # JobConfig, or ConfigError

Hydra composes `conf/` as before; `__main__` turns the result into a `JobConfig` here, and from then on
every part of the job receives typed objects, never the raw `DictConfig`. The schema holds the defaults;
the YAML presets under `conf/` spell them out for the reader and a test keeps the two equal.

| group | schema (owned by its room) |
| --- | --- |
| top level | `JobConfig` below: `seed`, `device`, `precision`, `progress` |
| `session` | `iunet_bench.session.config.SessionConfig` |
| `observers` | `iunet_bench.tasks.observers_config.ObserversConfig` (`task=observers`) |
| `protocol` | `iunet_bench.session.config.ProtocolConfig` (presets under `conf/protocol/` also set robot and rounds) |
| `data` | `iunet_bench.data.config` (one schema per `data.source`) |
| `model` | `iunet_bench.models.config` (one schema per `model.name`: iunet, unet3d_cicek, dilated_fcn, keras) |
| `train` | `iunet_bench.train.config.TrainConfig` |
| `simulator` | `simulators.config` (one schema per `simulator.kind`) |
| `interact` | `iunet_bench.interactive.config` (one schema per `interact.method`) |
| `tracking` | `iunet_bench.tracking.tracker.TrackingConfig` |

Rules across groups (the model grid against the model's pooling, `interact.trainable` against the model's
layer groups) are `JobConfig.rules`, written once, and reported together with every other problem: they run
on the keys that are valid (`core.schema.Rule`). `task=cv` fixes two values before validation
(`tasks.cv`); which function runs each task is `tasks.registry`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from iunet_bench.core.schema import Bool, ConfigError, Int, Rule, RuledSchema, ignored_keys, validate
from iunet_bench.data.config import DataConfig, PhantomData
from iunet_bench.interactive.config import InteractConfig, IUnetInteract
from iunet_bench.models.config import ModelConfig, UNetConfig
from iunet_bench.session.config import ProtocolConfig, SessionConfig
from iunet_bench.tasks import cv
from iunet_bench.tasks.observers_config import ObserversConfig
from iunet_bench.tracking.tracker import TrackingConfig
from iunet_bench.train.config import TrainConfig
from simulators.config import ScribbleSimulator, SimulatorConfig

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _grid_misfit(config: JobConfig) -> str | None:
    return config.model.grid_misfit(config.data.preprocess.grid)


def _unknown_trainable(config: JobConfig) -> str | None:
    """`interact.trainable` against the model's layer groups (iUnet's fine-tuning only)."""
    if not isinstance(config.interact, IUnetInteract):
        return None
    from iunet_bench.models.groups import describe

    valid = config.model.valid_groups()  # keras: model.groups' names + all (no file read)
    unknown = [g for g in config.interact.trainable if g not in valid]
    if not unknown:
        return None
    return (
        f"interact.trainable: unknown layer group(s) {unknown}; valid for model.name={config.model.name}:\n"
        f"{describe(valid)}"
    )


def _mixed_on_cpu(config: JobConfig) -> str | None:
    if config.device == "cpu" and config.precision != "float32":
        return f"precision: {config.precision} needs a GPU; with device=cpu use float32"
    return None


def _missing_observers(config: JobConfig) -> str | None:
    return config.observers.missing_presets(CONF_DIR) if config.task == "observers" else None


class JobConfig(RuledSchema):
    seed: Int = Field(
        0,
        ge=0,
        description="the one seed: phantoms, fold split, baseline training, robots and fine-tuning derive from "
        "it (same seed, same curves)",
    )
    backend: Literal["tensorflow", "jax", "torch"] = Field(
        "tensorflow",
        description="Keras 3 backend that trains and fine-tunes: tensorflow (the default and the CPU engine), "
        "jax (the GPU engine; slow on a CPU), torch; set before Keras is first imported and wins over "
        "KERAS_BACKEND; part of the run's identity and of the baseline cache key",
    )
    device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="TensorFlow's choice (auto), or the CPU, or a GPU (fails if none is seen)"
    )
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = Field(
        "float32", description="compute precision; mixed precision only on a GPU"
    )
    progress: Literal["auto"] | Bool = Field(
        "auto", description="progress bars: auto (on in a terminal, off when `CI` is set), true, false"
    )
    threads: Literal["auto"] | Annotated[Int, Field(ge=1)] = Field(
        "auto",
        description="TensorFlow threads per job (intra-op); auto: every core for a lone job, the cores shared "
        "out among the parallel jobs of a `hydra/launcher=joblib` sweep (cores // n_jobs)",
    )
    task: Literal["interactive", "cv", "observers"] = Field(
        "interactive",
        description="interactive: the benchmark job; cv: the automatic segmentation of the held-out fold only "
        "(round 0: the paper's first experiment, `session.rounds` set to 0 and `interact` to paste; `+sweep=models` "
        "runs every model "
        "on every fold); observers: the paper's second experiment simulated (manual against interactive "
        "segmentation by several observers, `observers.*`)",
    )
    resume: Bool = Field(
        True,
        description="run again with the same configuration: a finished run is returned as it is, an "
        "unfinished one (killed, failed) is continued from its finished cases; false = always a new run",
    )
    session: SessionConfig = SessionConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    observers: ObserversConfig = ObserversConfig()
    data: DataConfig = PhantomData()
    model: ModelConfig = UNetConfig()
    train: TrainConfig = TrainConfig()
    simulator: SimulatorConfig = ScribbleSimulator()
    interact: InteractConfig = IUnetInteract()
    tracking: TrackingConfig = TrackingConfig()

    rules = (  # across groups (`core.schema.Rule`): reported with the field errors, at once
        Rule(("model", "data.preprocess.grid"), _grid_misfit),
        Rule(("model", "interact.method", "interact.trainable"), _unknown_trainable),
        Rule(("task", "observers"), _missing_observers),
        Rule(("device", "precision"), _mixed_on_cpu),
    )

    def params(self) -> dict[str, Any]:
        """The resolved configuration as plain values (lists, strings): MLflow params and config.yaml."""
        return self.model_dump(mode="json")

    @property
    def run_name(self) -> str:
        if self.tracking.run_name:
            return self.tracking.run_name
        method = self.interact.method
        detail = (
            "+".join(self.interact.trainable) if method == "iunet" else getattr(self.interact, "target", "")
        )
        return " ".join(x for x in (method, detail, self.simulator.name or "") if x)


def load_config(raw: Mapping[str, Any], note=None) -> JobConfig:
    """The job's configuration from a composed (resolved, plain) mapping; ConfigError lists every problem.
    `note`: a stream (e.g. sys.stderr) told which keys were ignored as another variant's. A task that fixes
    values of its own (task=cv: `tasks.cv.fixed_values`) sets them here, before validation."""
    task_values = cv.fixed_values(raw) if isinstance(raw, Mapping) and raw.get("task") == "cv" else raw
    config = validate(JobConfig, task_values)
    ignored = dropped_keys(raw, config)
    if ignored and note is not None:
        print(f"note: ignored by this configuration's variants: {', '.join(ignored)}", file=note)
    return config


def resolved(cfg) -> dict[str, Any]:
    """A composed Hydra config as plain values, interpolations resolved; ConfigError naming the key whose
    interpolation does not resolve (`seed=${nope}`)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError([f"{key}: {str(exc).splitlines()[0]}"]) from None


def compose_config(overrides: Sequence[str] = (), note=None) -> JobConfig:
    """The configuration `python -m iunet_bench OVERRIDES...` runs with: `conf/` composed by Hydra with
    these overrides, then validated (for scripts such as the speed benchmarks)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        raw = OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)
    return load_config(raw, note)


def dropped_keys(raw: Mapping[str, Any], config: JobConfig) -> list[str]:
    """Keys of `raw` that belong to another variant of their group and were ignored (e.g. `interact.steps`
    set by an experiment file under `interact=paste`)."""
    return ignored_keys(raw, config)


__all__ = ["ConfigError", "JobConfig", "compose_config", "dropped_keys", "load_config", "resolved"]
