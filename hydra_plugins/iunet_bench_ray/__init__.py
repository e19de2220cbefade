"""`hydra/launcher=ray`: each job of a sweep as a Ray task, on a running Ray cluster or a local instance.

A Hydra plugin (Hydra only loads launchers from the `hydra_plugins` namespace). It stands in for the
`hydra-ray-launcher` package, which pins cloudpickle < 3 (so it cannot share an environment with joblib 1.6)
and cannot join a running cluster without an extra override (it passes `object_store_memory` to
`ray.init`, which Ray refuses then). Needs `ray` (the `cluster` extra); Ray is imported only when a sweep
launches. Config: `conf/hydra/launcher/ray.yaml`; use: docs/how-to/clusters.md.
"""
