"""Everything a job builds from its configuration, in one place for the job and the speed benchmarks.

    setup = prepare(config)                  # lists the data, checks folders and the device: cheap
    volumes = setup.volumes()                # .train, .test, .failures (cases that could not be loaded)
    baseline = setup.baseline(on_step)       # cached, keyed by data, model, training, seed, precision, code
    refiner = setup.refiner()                # or setup.refiner(other_interact_config)

`benchmarks/` build through this same class, so what they time is what a job runs (the same model, the
same baseline cache key, the same refiner), never a re-implementation of it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from iunet_bench.core.schema import ConfigError
from iunet_bench.tasks.config import JobConfig

if TYPE_CHECKING:  # the data readers (SimpleITK) load when a job lists its data, not at import
    from iunet_bench.data import Dataset, Failure, Volume


def require_gpu(config: JobConfig) -> None:
    """ConfigError when the job asks for a GPU (`device=gpu`, or a mixed `precision`) and the machine
    certainly has none for its backend, known without importing the framework (`core.runtime.no_gpu`);
    otherwise the framework's own check decides (`configure_backend`)."""
    from iunet_bench.core.runtime import no_gpu

    if config.device != "gpu" and config.precision == "float32":
        return
    absent = no_gpu(config.backend)
    if absent is None:
        return
    if config.device == "gpu":
        raise ConfigError([f"device: 'gpu' was asked for but {config.backend} can see no GPU: {absent}"])
    raise ConfigError(
        [
            f"precision: {config.precision} needs a GPU and {config.backend} can see none: {absent}; on the CPU use float32"
        ]
    )


def configure_backend(config: JobConfig) -> str:
    """Choose the Keras backend (`backend`, before Keras is first imported), the device and precision, and
    seed it; returns the device used (logged as a tag). Raises ConfigError for a backend, device or
    precision this process or machine cannot give."""
    from iunet_bench.core.runtime import use_backend

    require_gpu(config)
    try:
        use_backend(config.backend, config.device)
    except RuntimeError as exc:
        raise ConfigError([str(exc)]) from None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from iunet_bench.train.backends import engine

    try:
        device = engine.current().configure(
            config.device, job_threads(config.threads), config.seed, config.precision
        )
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    if config.backend != "tensorflow" and device == "cpu":
        print(
            f"note: backend={config.backend} on a CPU is slow (its rounds measured 3-6x TensorFlow's on an "
            "8x24x24 grid, more on larger ones: docs/explanation/speed.md#backends); TensorFlow is the CPU "
            "engine, JAX and PyTorch the GPU ones",
            file=sys.stderr,
        )
    return device


def job_threads(threads) -> int | None:
    """TensorFlow intra-op threads for this job: `threads` as given, or for `auto` the machine's cores
    divided among the parallel jobs of a joblib-launched sweep (None: TensorFlow's own choice, every core).
    Without this, n parallel jobs each start a thread per core and slow one another down."""
    if threads != "auto":
        return int(threads)
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    if "Joblib" not in str(launcher.get("_target_", "")):
        return None
    from iunet_bench.core.runtime import cores

    available = cores()
    n_jobs = int(launcher.get("n_jobs", -1))
    n_jobs = available if n_jobs <= 0 else min(n_jobs, available)
    return max(1, available // n_jobs)


def show_progress(config: JobConfig) -> bool:
    if config.progress == "auto":
        return not os.environ.get("CI") and sys.stderr.isatty()
    return bool(config.progress)


@dataclass
class Volumes:
    train: list[Volume]
    test: list[Volume]
    failures: list[Failure] = field(default_factory=list)  # cases that could not be loaded


class JobSetup:
    """The pieces of one job, each built on first use from the validated configuration."""

    def __init__(self, config: JobConfig):
        self.config = config

    @cached_property
    def dataset(self) -> Dataset:
        from iunet_bench.data import build_dataset

        return build_dataset(self.config.data)

    @cached_property
    def robot(self):
        from simulators import make_annotator

        return make_annotator(self.config.simulator)

    @cached_property
    def first_robot(self):
        """The annotator of round 1 when the protocol starts with a prompt of its own (`protocol.first`),
        else None (the robot from round 1)."""
        protocol = self.config.protocol
        if protocol.first == "none":
            return None
        from simulators import ClickTime
        from simulators.box import BoxRobot

        time = self.config.simulator.time  # a box is two clicks: the click robot's time model, or the default
        return BoxRobot(
            protocol.box_jitter, protocol.box_shift, time if isinstance(time, ClickTime) else ClickTime()
        )

    @cached_property
    def split(self) -> tuple[list[str], list[str]]:
        """(training case ids, held-out case ids), the latter cut to `session.max_cases`."""
        train_ids, test_ids = self.dataset.split()
        return train_ids, test_ids[: self.config.session.max_cases]

    @cached_property
    def device(self) -> str:
        """The device the job's network runs on (logged as a tag). A job that trains no baseline runs no
        network of its own (a plug-in brings its own): the CPU, and the framework is never imported."""
        if not self.trains_baseline:
            return "cpu"
        return configure_backend(self.config)

    @cached_property
    def classes(self) -> dict[str, JobSetup]:
        """Per class of `data.classes`, by the name its sessions carry (`Dataset.classes`): the setup of the
        job with `data.foreground=[class]` (its own volumes, crop and baseline); {} without `data.classes`."""
        out = {}
        for name, value in self.dataset.classes.items():
            dataset = self.dataset.for_class(value)
            part = JobSetup(self.config.model_copy(update={"data": dataset.config}))
            part.__dict__.update(dataset=dataset, device=self.device)  # the backend is configured once
            out[name] = part
        return out

    @property
    def session_ids(self) -> list[str]:
        """The held-out sessions' case ids: the held-out cases, or with `data.classes` `<class>/<case>` for
        each class and case (class by class)."""
        _, test_ids = self.split
        return [f"{name}/{c}" for name in self.classes for c in test_ids] or list(test_ids)

    def check(self) -> None:
        """What the schema cannot know without touching the machine: the device and precision exist (known
        without the framework's import where the machine says so, `core.runtime.no_gpu`), the data set lists
        (and splits into `data.split.folds`) and its intensity mode is known, the cache folders take files, a
        tracking server answers, a plug-in's `interact.target` imports, the tracking store opens. ConfigError
        otherwise; nothing is computed, and the tracking store is opened (a sqlite file created) only once
        everything else has passed."""
        from iunet_bench.core.files import require_writable
        from iunet_bench.tracking.tracker import check_reachable, open_client

        config = self.config
        require_gpu(config)  # in a second, where the machine has no GPU at all
        check_reachable(config.tracking.uri)  # a server: seconds; creates nothing
        _ = self.split
        _ = self.dataset.preprocess_config
        require_writable(config.train.cache_dir, "train.cache_dir")
        check_plugin(config.interact)
        if self.device != "cpu" and config.session.workers > 1:
            raise ConfigError(
                [
                    f"session.workers: {config.session.workers} parallel case processes are for the CPU; "
                    f"on {self.device} the cases share the GPU in one process (session.workers=1)"
                ]
            )
        open_client(config.tracking.uri)

    def volumes(self) -> Volumes:
        """The loaded cases; with `data.classes` every class's, as its sessions (`Volume.for_class`)."""
        if "_volumes" not in self.__dict__ and self.classes:
            from iunet_bench.data import Failure

            parts = {name: part.volumes() for name, part in self.classes.items()}
            self._volumes = Volumes(
                [v.for_class(n) for n, p in parts.items() for v in p.train],
                [v.for_class(n) for n, p in parts.items() for v in p.test],
                [Failure(f"{n}/{f.case_id}", f.error) for n, p in parts.items() for f in p.failures],
            )
        if "_volumes" not in self.__dict__:
            train_ids, test_ids = self.split
            train, bad = self.dataset.volumes(train_ids)
            test, bad_test = self.dataset.volumes(test_ids)
            self._volumes = Volumes(train, test, bad + bad_test)
        return self._volumes

    def build_model(self):
        """The configured network (`model.name`: iunet, unet3d_cicek, dilated_fcn, or keras, loaded from
        `model.path`), untrained but for a `keras` file's own weights."""
        from iunet_bench.models import build_model

        return build_model(self.config.data.preprocess.grid, self.config.model)

    def baseline(self, on_step=None):
        """The baseline (`train.baseline.Baseline`): from the cache, or trained on the training volumes."""
        if "_baseline" not in self.__dict__:
            from iunet_bench.train.baseline import load_or_train

            _ = self.device  # precision policy and seeds first
            c = self.config
            self._baseline = load_or_train(
                self.build_model, self.volumes().train, c.model, c.train, c.seed, c.precision, on_step
            )
        return self._baseline

    @property
    def trains_baseline(self) -> bool:
        """False when the method needs no network of the job's (a plug-in with `interact.initial: none`):
        nothing is trained and round 0 is an empty mask."""
        return getattr(self.config.interact, "initial", "baseline") != "none"

    def initial_predictions(self, volumes, observers) -> dict:
        """Round 0 of each volume: the baseline's prediction (trained or from the cache, its steps and end
        told to `observers`), or an empty mask when the job trains no baseline (`trains_baseline`)."""
        import numpy as np

        if not self.trains_baseline:
            return {v.case_id: np.zeros(v.image.shape, np.uint8) for v in volumes}
        from iunet_bench.interactive.refiner import predict_mask

        baseline = self.baseline(observers.on_baseline_step)
        observers.on_baseline_end(baseline)
        # refiners fine-tune their own copy: the baseline itself gives every case's round 0
        return {v.case_id: predict_mask(baseline.model, v.image) for v in volumes}

    def refiner(self, interact=None, model=None):
        """A refiner of `interact` (default: the job's `interact` config) on `model` (default: the
        baseline, or None when the job trains none; a speed benchmark may pass `build_model()`, the
        untrained network, to train nothing)."""
        from iunet_bench.interactive import build_refiner

        interact = interact if interact is not None else self.config.interact
        if model is None and self.trains_baseline:
            model = self.baseline().model
        return build_refiner(interact, model)

    def floor(self):
        """The paste floor: the same interactions pasted into the previous prediction, no learning (with
        the job's `interact.accumulate`), run beside the method in every session; None when the job runs
        no rounds (`task=cv`: round 0 alone has nothing to compare)."""
        if self.config.session.rounds == 0:
            return None
        from iunet_bench.interactive import build_refiner
        from iunet_bench.interactive.config import PasteInteract

        return build_refiner(PasteInteract(accumulate=self.config.interact.accumulate), None)

    def painter(self):
        """The painting-only user's refiner: `interact=paste` as a method (every stroke pasted in and kept),
        run in a session of its own beside the method's on every case (`session.loop.painter_curve`); None
        when the job runs no rounds."""
        if self.config.session.rounds == 0:
            return None
        from iunet_bench.interactive import build_refiner
        from iunet_bench.interactive.config import PasteInteract

        return build_refiner(PasteInteract(), None)


def check_plugin(interact) -> None:
    """ConfigError naming `interact.target` when a plug-in's class does not import or lacks `begin` or
    `predict` (`interactive.plugin.load_target`); nothing for the other methods."""
    from iunet_bench.interactive.config import PluginInteract

    if not isinstance(interact, PluginInteract):
        return
    from iunet_bench.interactive.plugin import load_target

    try:
        load_target(interact.target)
    except ValueError as exc:
        raise ConfigError([f"interact.target: {exc}"]) from None


def prepare(config: JobConfig) -> JobSetup:
    """A job's setup, checked (`JobSetup.check`) before anything is computed."""
    setup = JobSetup(config)
    setup.check()
    return setup
