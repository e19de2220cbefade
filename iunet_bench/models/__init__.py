"""Models room (TensorFlow/Keras). Import submodules directly: `models.unet` builds, `models.groups` names layers."""
