"""Analysis room: the numbers and pictures made of round records. `results` (a job's summary and
table, pure functions), `plots` (curves, matplotlib's object API), `report` (runs read back from MLflow and
compared on one page: `python -m iunet_bench report`). No TensorFlow here.

May import: core, simulators, data, models, train, interactive, session, tracking.
"""
