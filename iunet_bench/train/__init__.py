"""Train room: the baseline network's training (paper section 2.4). `config` (the `train` keys, no
TensorFlow), `baseline` (training, cached), `loss` (soft Dice, optionally weighted), `augment`, `optim`
(Adam, loss-scaled under float16). TensorFlow is imported by the modules that train.

May import: core, simulators, data, models.
"""
