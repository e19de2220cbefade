"""The `interact` config group: one schema per method (`interact.method`), checked without TensorFlow.

Methods: `iunet` (layer-subset fine-tuning, paper sections 2.5-2.6), `bifseg` (image-specific fine-tuning
of all layers with BIFSeg's own weighted cross-entropy, Wang et al. 2018), `paste` (no learning: the
scribbles pasted into the previous prediction), `random_walker` (scikit-image's random walker seeded by the
scribbles and the confident prediction), `plugin` (any model behind the plug-in contract,
`interactive/plugin.py`), `cvpr25_container` (a CVPR 2025 challenge submission run as a command,
`interactive/container.py`). Whether `interact.trainable` names layer groups of the configured model is a
rule of the job's schema (`iunet_bench.tasks.config`), which knows both; whether `interact.target` imports
is checked with the machine's other facts (`tasks.prepare.JobSetup.check`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from iunet_bench.core.schema import Bool, Float, Int, Schema, variants


class WeightsConfig(Schema):
    scribble: Float = Field(3.0, ge=0, description="weight of scribbled voxels in eq. 3 (the paper's 3)")
    uncertain: Float = Field(0.0, ge=0, description="weight in the geodesic band around the scribbles")
    mode: Literal["both", "numerator"] = Field(
        "both",
        description="both: weights numerator and denominator of the Dice (weight 0 removes a voxel); "
        "numerator: eq. 3 exactly as printed",
    )


class GeodesicConfig(Schema):
    threshold: Float = Field(
        0.2,
        ge=0,
        le=1,
        description="the band = voxels outside the scribbles whose geodesic distance to them, divided by its "
        "maximum over the volume, is below this (random_walker: there the contradicted class is no seed)",
    )
    intensity_weight: Float = Field(
        10.0,
        ge=0,
        description="geodesic cost per mm = 1 + this x |grad I| (I in [-1, 1] per mm); 0 = Euclidean distance",
    )


class _Method(Schema):
    accumulate: Bool = Field(
        True,
        description="earlier rounds' scribbles stay in the target, weight map and seeds (a later stroke of "
        "the other polarity on a voxel wins); false = this round's only",
    )


class _Finetune(_Method):
    """What every fine-tuning method shares: the optimiser's budget per round, and its stopping rule."""

    steps: Int = Field(
        20,
        ge=0,
        description="Adam steps per round; with `until_agreement`: steps per chunk (0 = just predict)",
    )
    lr: Float = Field(
        1e-3,
        gt=0,
        description="Adam learning rate (state restored at every case; the paper's 1e-4: `interact=iunet_paper`)",
    )
    until_agreement: Float | None = Field(
        0.95,
        gt=0,
        le=1,
        description="stopping rule: after each chunk of `steps` steps, stop once this share of this round's "
        "scribbled voxels, and of the case's so far, carries its label in the network's prediction, or at "
        "`max_steps`; "
        'null = exactly `steps` steps (the paper\'s "a few iterations")',
    )
    max_steps: Int = Field(
        200,
        ge=1,
        description="with `until_agreement`: the cap on steps per round, in whole chunks (the steps each "
        "round took are logged)",
    )
    paste_scribbles: Bool = Field(
        False,
        description="paste the scribbles over the network's prediction before the user sees it (not the "
        "paper's method: the prediction is the network's own output); agreement is always measured on the "
        "network's output before pasting",
    )
    local_mm: Float | None = Field(
        None,
        gt=0,
        description="keep each round's change local (a trust region, not the paper's method): only voxels "
        "within this distance in mm of the case's scribbles so far may change label; elsewhere the previous "
        "prediction stays (null = anywhere); agreement is measured on the prediction after this",
    )

    @model_validator(mode="after")
    def _chunks_need_steps(self):
        if self.until_agreement is not None and not 1 <= self.steps <= self.max_steps:
            raise ValueError(
                f"until_agreement needs 1 <= steps <= max_steps (steps is the size of a chunk; "
                f"got steps={self.steps}, max_steps={self.max_steps})"
            )
        return self


class IUnetInteract(_Finetune):
    method: Literal["iunet"] = Field("iunet", description="the interaction method")
    trainable: tuple[str, ...] = Field(
        ("head", "bottleneck", "decoder.0"),
        min_length=1,
        description="what is fine-tuned: blocks `head`, `bottleneck`, `decoder`, `encoder`, `all`; levels "
        "`decoder.<i>`, `encoder.<i>` (levels count from the top, 0 = full resolution); single layers "
        "`bottleneck.conv<j>`, `encoder.<i>.conv<j>`, `decoder.<i>.conv<j>`, their `.bn<j>` (with "
        "`model.norm: batch`) and `decoder.<i>.up` (e.g. `bottleneck.conv1`, the paper's \"a layer in the "
        'deepest section"); an unknown name lists the valid ones for the model, grouped. bifseg: always `all`',
    )
    lambda_volume: Float = Field(
        0.1,
        ge=0,
        description="lambda of eq. 3, weight of the squared relative volume change ((sum P - sum Y') / sum P)^2",
    )
    scribble_ce: Float = Field(
        0.1,
        ge=0,
        description="weight of a cross-entropy term over the scribbled voxels (their mean) added to eq. 3: "
        "where the network is confidently wrong the Dice's gradient vanishes and no step flips a scribbled "
        "voxel; the cross-entropy's does not (README, How the defaults were chosen). 0 = eq. 3 alone (the "
        "paper's loss: `interact=iunet_paper`)",
    )
    fast: Bool = Field(
        True,
        description="split the network at its frozen frontier (`models/split.py`): the frozen prefix, and the "
        "skip connections' share of frozen decoder convolutions, are computed once per case; each round "
        "(all steps + prediction) is one compiled function on the tail, built once per job. false = the "
        "straightforward path (whole network every step); results agree to float summation order. With "
        "nothing frozen (trainable all) the straightforward path runs either way",
    )
    weights: WeightsConfig = WeightsConfig()
    geodesic: GeodesicConfig = GeodesicConfig()

    @field_validator("trainable", mode="before")
    @classmethod
    def _one_or_more(cls, value):
        if isinstance(value, str):
            return (value,)
        if isinstance(value, (list, tuple)):
            return tuple(dict.fromkeys(value))
        return value


class BifsegInteract(_Finetune):
    """BIFSeg's image-specific fine-tuning (Wang et al., IEEE TMI 2018), as far as this harness has it:
    every layer, a voxel-weighted cross-entropy towards the previous prediction with the scribbles pasted
    in, scribbles weighted `scribble_weight`, voxels whose own foreground probability is uncertain (the
    larger class probability below `confident`) weight 0, everything else 1. Departures: no CRF (BIFSeg's
    label update alternates with a CRF; here the target is the thresholded prediction), and the network is
    the job's 3D U-Net, not BIFSeg's P-Net."""

    method: Literal["bifseg"] = "bifseg"
    trainable: tuple[Literal["all"]] = ("all",)
    steps: Int = Field(20, ge=0, description="Adam steps per round; with `until_agreement`: per chunk")
    lr: Float = Field(1e-3, gt=0, description="Adam learning rate (state restored at every case)")
    until_agreement: Float | None = Field(
        None, gt=0, le=1, description="bifseg: null = BIFSeg's fixed `steps` per round; a share: as for iunet"
    )
    scribble_weight: Float = Field(5.0, ge=0, description="bifseg: cross-entropy weight of scribbled voxels")
    confident: Float = Field(
        0.8,
        ge=0.5,
        le=1,
        description="bifseg: a voxel outside the scribbles whose larger class probability (previous "
        "prediction) is below this is uncertain: weight 0",
    )


class PasteInteract(_Method):
    method: Literal["paste"] = "paste"


class RandomWalkerInteract(_Method):
    method: Literal["random_walker"] = "random_walker"
    beta: Float = Field(
        130.0,
        gt=0,
        description="edge penalty (scikit-image's `beta`; larger = image edges stop the walk more)",
    )
    boundary_voxels: Int = Field(
        0,
        ge=0,
        description="also leave a shell of this many voxels around the prediction's boundary to the walker",
    )
    tol: Float = Field(1e-3, gt=0, description="conjugate-gradient tolerance")
    geodesic: GeodesicConfig = GeodesicConfig()


TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


# one text for both variants (the configuration reference shows one meaning per key)
TIMEOUT_TEXT = (
    "seconds before a case fails: plugin, each call of the plug-in (building it, `begin`, `predict`, `end`); "
    "cvpr25_container, each run of the command, per class (the challenge's 90)"
)


class PluginInteract(_Method):
    """Any interactive model behind the plug-in contract (`interactive/plugin.py`, the how-to page
    "Benchmark your own interactive model"). `accumulate`: whether its prompts hold every round's so far."""

    method: Literal["plugin"] = "plugin"
    target: str = Field(
        description="the plug-in class, `package.module:Name` (its module importable: on PYTHONPATH or "
        "installed); checked before any compute: it imports and has callable `begin` and `predict`",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments the class is built with, once per job: `Name(**options)` "
        "(`+interact.options.NAME=VALUE` on the command line)",
    )
    timeout_s: Float = Field(
        60.0,
        gt=0,
        description=TIMEOUT_TEXT,
    )
    initial: Literal["none", "baseline"] = Field(
        "none",
        description="round 0: none = an empty mask, and no baseline network is trained; baseline = the "
        "job's network's prediction, as for the other methods",
    )

    @field_validator("options")
    @classmethod
    def _keyword_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not k.isidentifier()]
        if bad:
            raise ValueError(f"{bad} are no Python names (the options are keyword arguments of the class)")
        return value

    @field_validator("target")
    @classmethod
    def _module_colon_name(cls, value: str) -> str:
        if not TARGET.match(value):
            raise ValueError("expected `package.module:Name` (a dotted module path, a colon, a class name)")
        return value


class ContainerInteract(_Method):
    """A CVPR 2025 challenge submission (`interactive/container.py`): each round the challenge's `.npz` is
    written to `<workdir>/inputs/`, `command` run in `workdir`, `segs` read from `<workdir>/outputs/`. Run
    through the plug-in adapter (`as_plugin`), so faults fail one case as a plug-in's do."""

    method: Literal["cvpr25_container"] = "cvpr25_container"
    command: str = Field(
        min_length=1,
        description="shell command run in `workdir` each round, e.g. `python predict.py` or `docker container "
        "run --rm -v {workdir}/inputs:/workspace/inputs -v {workdir}/outputs:/workspace/outputs team:latest "
        '/bin/bash -c "sh predict.sh"` (`{workdir}` is replaced by the folder); required',
    )
    workdir: str | None = Field(
        None,
        description="folder for inputs/, outputs/ and logs/ (null: a new cvpr25_* folder in the job's folder)",
    )
    timeout_s: Float = Field(90.0, gt=0, description=TIMEOUT_TEXT)
    class_value: Int = Field(
        1,
        ge=1,
        le=255,
        description="the structure's label value in `prev_pred` and `segs` (its box and clicks are the files' "
        "only class)",
    )
    spacing_order: Literal["zyx", "xyz"] = Field(
        "zyx",
        description="order of `spacing` in the file: zyx = the array's axes, as the challenge's evaluator reads "
        "it; xyz = SimpleITK's order, as MedSAM-style preprocessing stores it",
    )
    initial: Literal["none", "baseline"] = Field(
        "none",
        description="round 0: none = an empty mask, and no baseline network is trained; baseline = the "
        "job's network's prediction, as for the other methods",
    )

    def as_plugin(self) -> PluginInteract:
        """The same job as `interact=plugin` with the container class as target; the adapter's own watchdog
        waits 30 s longer than the command's limit, so the command's timeout (which kills it) fires first."""
        return PluginInteract(
            target=CONTAINER_TARGET,
            options={
                "command": self.command,
                "workdir": self.workdir,
                "timeout_s": self.timeout_s,
                "class_value": self.class_value,
                "spacing_order": self.spacing_order,
            },
            timeout_s=self.timeout_s + 30.0,
            initial=self.initial,
            accumulate=self.accumulate,
        )


CONTAINER_TARGET = "iunet_bench.interactive.container:Cvpr25Container"


FinetuneConfig = IUnetInteract | BifsegInteract
InteractConfig = variants(
    IUnetInteract,
    BifsegInteract,
    PasteInteract,
    RandomWalkerInteract,
    PluginInteract,
    ContainerInteract,
    tag="method",
)
