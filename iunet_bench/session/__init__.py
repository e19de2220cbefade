"""Session room: one case, one robot, one refiner, round after round. `config` (the `session` and
`protocol` keys), `loop` (`run_session`, the round loop), `records` (`RoundRecord`, what a round leaves
behind, and `measure`). No TensorFlow here: the refiner it is handed brings its own.

May import: core, simulators, data, models, train, interactive.
"""
