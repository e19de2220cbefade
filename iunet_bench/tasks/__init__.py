"""Tasks room: the jobs `python -m iunet_bench task=...` runs, and what composes them. `config` (the
whole job's schema, `JobConfig`), `prepare` (everything a job builds from its configuration), `job` and
`cases` (the interactive benchmark and `task=cv`), `observers` (the paper's second experiment), `sweep` (a
multirun as one MLflow sweep), `reference` (README's configuration tables).

May import: core, simulators, data, models, train, interactive, session, tracking, analysis.
"""
