"""Tracking room: everything MLflow. `tracker` (the store, one run per job under a sweep's parent run,
batched logging, the `tracking` keys), `resume` (a job run again continues from its finished cases). No
TensorFlow here.

May import: core, simulators, data, models, train, interactive, session.
"""
