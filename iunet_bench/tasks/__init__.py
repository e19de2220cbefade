"""Tasks room: the jobs `python -m iunet_bench task=...` runs, and what composes them. `config` (the
whole job's schema, `JobConfig`), `registry` (each task's run function, which `__main__` dispatches
through), `prepare` (everything a job builds from its configuration), `job` and `cases` (the interactive
benchmark), `cv` (the values `task=cv` fixes), `observers` and `observers_config` (the paper's second
experiment and its `observers` keys), `sweep` (a multirun as one MLflow sweep), `reference` (README's
configuration tables).

May import: core, simulators, data, models, train, interactive, session, tracking, analysis.
"""
