"""Core room: what every room uses. `schema` (how configuration is typed and validated), `schema_tables`
(the configuration page's tables, from the schemas), `rng` (every generator derived from the one seed),
`files` (atomic writes, content-addressed caches), `runtime` (inside a Hydra run, a multirun, or called
directly; threads; whether a GPU can be there), `metrics` (DSC, NSD and the interaction metrics: pure
numpy). Never TensorFlow.

May import: none of the other rooms (the standard library, numpy, pydantic, Hydra, filelock only).
"""
