"""Bring your own Keras 3 model (`model.name: keras`): load a `.keras` file and make it speak the engine's
language.

    model = load_user_model(grid, cfg)      # cfg: KerasModelConfig; grid: data.preprocess.grid

- Input: one tensor (batch, z, y, x, 1) equal to the grid (an axis left `None` in the file is fixed to the
  grid's, a functional model being rebuilt from its config with the file's weights).
- Output: a 2-class softmax (z, y, x, 2), or a 1-channel sigmoid (z, y, x, 1), to which a weightless layer
  `byo.two_class` is appended that maps p to [1 - p, p]: the engine always sees 2 classes in float32.
- Groups: `model.groups` (name -> regular expressions, re.search over the names of the model's top-level
  layers with weights; a nested model is one layer) are carried by a weightless identity layer
  `byo.groups` at the output, so that `models.groups` finds them in any copy of the model
  (`get_config`/`from_config`). `all` is always there; a group that matches no layer is an error.
- The fast path (`models.split`) needs a functional model with each layer called once: a Sequential model
  is made functional here (same layers, same weights); a subclassed one is wrapped as one opaque layer,
  which trains only as `all` and never splits (`split.can_split` says why).

Its baseline is the file's weights (`KerasModelConfig.pretrained`).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from iunet_bench.models.config import KerasModelConfig
from iunet_bench.models.groups import BYO_GROUPS_LAYER, byo_members

TWO_CLASS_LAYER = "byo.two_class"
ACCEPTED = "a 2-class softmax (batch, z, y, x, 2) or a 1-channel sigmoid (batch, z, y, x, 1)"


@keras.saving.register_keras_serializable(package="iunet_bench")
class TwoClass(layers.Layer):
    """p (..., 1) -> [1 - p, p] (..., 2). No weights."""

    def call(self, p):
        return ops.concatenate([1 - p, p], axis=-1)

    def compute_output_shape(self, shape):
        return (*shape[:-1], 2)


@keras.saving.register_keras_serializable(package="iunet_bench")
class GroupPatterns(layers.Layer):
    """The identity, carrying `model.groups` (name -> regular expressions over layer names). No weights."""

    def __init__(self, groups: dict, **kwargs):
        super().__init__(**kwargs)
        self.groups = {str(g): [str(p) for p in patterns] for g, patterns in groups.items()}

    def call(self, x):
        return x

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


def _functional(model) -> bool:
    from keras.src.models.functional import Functional

    return isinstance(model, Functional) and not isinstance(model, keras.Sequential)


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _final_activation(tensor) -> str | None:
    """The activation that produced `tensor`, when it can be told (a layer's `activation` or a Softmax /
    Activation layer), else None."""
    layer = tensor._keras_history.operation
    if isinstance(layer, layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def _with_grid(model, grid: tuple[int, ...]):
    """A functional model whose input is (None, *grid, 1): itself, or rebuilt from its config with the
    file's weights when an axis was left None."""
    config = model.get_config()
    for spec in config["layers"]:
        if spec["class_name"] == "InputLayer":
            spec["config"]["batch_shape"] = [None, *grid, 1]
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def load_user_model(grid, cfg: KerasModelConfig) -> keras.Model:
    """The user's model from `cfg.path`, checked against the grid and given the engine's 2-class output
    and its layer groups; ValueError naming `model.path` (or `model.groups.<name>`) otherwise."""
    grid = tuple(int(n) for n in grid)
    want = (None, *grid, 1)
    path = cfg.path
    try:
        user = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - any loading failure is the user's file
        raise ValueError(f"model.path: {str(path)!r} could not be loaded as a Keras 3 model: {exc}") from exc
    if isinstance(user, keras.Sequential):
        if not user.built or not getattr(user, "inputs", None):
            raise ValueError(f"model.path: {str(path)!r}: a Sequential model must be built with an Input")
        user = keras.Model(user.inputs, user.outputs, name=user.name)  # same layers, functional
    if _functional(user):
        if len(user.inputs) != 1 or len(user.outputs) != 1:
            raise ValueError(
                f"model.path: {str(path)!r}: needs one input and one output; it has {len(user.inputs)} "
                f"input(s) {[_shape(t) for t in user.inputs]} and {len(user.outputs)} output(s)"
            )
        given = _shape(user.inputs[0])
        fits = len(given) == len(want) and all(g in (None, w) for g, w in zip(given[1:], want[1:]))
        if not fits:
            raise ValueError(
                f"model.path: {str(path)!r}: input shape {given} does not match data.preprocess.grid "
                f"{list(grid)}: expected (batch, z, y, x, 1) = {want}"
            )
        if given[1:] != want[1:]:
            user = _with_grid(user, grid)
        inputs, output = user.inputs, user.outputs[0]
    else:  # subclassed: one opaque layer
        inputs = [keras.Input(batch_shape=want, name="image")]
        try:
            output = user(inputs[0])
        except Exception as exc:  # noqa: BLE001
            raise ValueError(
                f"model.path: {str(path)!r}: could not be called on an input of shape {want} "
                f"(data.preprocess.grid {list(grid)}): {exc}"
            ) from exc
        if isinstance(output, (list, tuple)):
            raise ValueError(f"model.path: {str(path)!r}: needs one output; it has {len(output)}")
    shape = _shape(output)
    activation = _final_activation(output)
    channels = shape[-1] if len(shape) == 5 and shape[1:4] == grid else None
    expected = {2: "softmax", 1: "sigmoid"}
    if channels not in expected or activation not in (None, expected[channels]):
        told = f" with a {activation} activation" if activation else ""
        raise ValueError(
            f"model.path: {str(path)!r}: output shape {shape}{told} is not accepted; the output must be "
            f"{ACCEPTED} on data.preprocess.grid {list(grid)}"
        )
    names = {layer.name for layer in user.layers} if _functional(user) else {user.name}
    if names & {TWO_CLASS_LAYER, BYO_GROUPS_LAYER}:
        raise ValueError(
            f"model.path: {str(path)!r}: layer names {TWO_CLASS_LAYER!r}, {BYO_GROUPS_LAYER!r} are reserved"
        )
    if channels == 1:
        output = TwoClass(name=TWO_CLASS_LAYER, dtype="float32")(output)
    output = GroupPatterns(dict(cfg.groups), name=BYO_GROUPS_LAYER, dtype="float32")(output)
    model = keras.Model(inputs[0], output, name=f"byo_{user.name}")
    weighted = [layer.name for layer in model.layers if layer.weights]
    for group, patterns in cfg.groups.items():
        if not byo_members(weighted, patterns):
            raise ValueError(
                f"model.groups.{group}: {list(patterns)} match no layer with weights of {str(path)!r}; its "
                f"layers with weights: {weighted}"
            )
    return model
