"""`task=cv`: the automatic segmentation of the held-out fold only (the paper's first experiment; `+sweep=models`
runs every model on every fold). It runs the interactive job (`tasks.job.run`) with two values of its own:

- `session.rounds = 0`: round 0, the baseline's prediction, is all that is measured;
- `interact = {method: paste}`: nothing is fine-tuned, so no refiner, and no `interact.trainable` that
  another model (`+sweep=models`) may lack.

These replace what the user composed *before* validation (`tasks.config.load_config` applies
`fixed_values`), not after: validation must see them, or `interact.trainable` would be checked against a
model it will never fine-tune. The MLflow params (rounds 0, interact paste) are the validated values, as
they were when this rewrite was a pre-validator of `JobConfig`.

Imports nothing of the tasks room: `tasks.config` imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def fixed_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The composed configuration `raw` with task=cv's own values in place of the user's."""
    session = dict(raw.get("session") or {})
    session["rounds"] = 0
    return {**raw, "session": session, "interact": {"method": "paste"}}
