"""What differs between Keras 3's backends, one small module each (`tensorflow`, `jax`, `torch`): the
fine-tuning round compiled as one call (all steps and the prediction), the baseline training step, and the
device, threads and determinism. Everything else (the models, the losses on `keras.ops`, weight maps, the
frozen-frontier split) is written once and shared. `engine.current()` gives the module of the backend Keras
runs on; `iunet_bench.core.runtime.use_backend` chooses it before Keras is first imported."""
