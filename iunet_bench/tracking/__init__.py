"""Tracking room: everything MLflow. `tracker` (the store, one run per job under a sweep's parent run,
batched logging, the `tracking` keys), `client` (the job's calls under its HTTP limits, a lost server told
once), `links` (the UI links a job prints), `resume` (a job run again continues from its finished cases),
`claim` (one live job per run). No TensorFlow here.

May import: core, simulators, data, models, train, interactive, session.
"""
