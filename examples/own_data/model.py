"""The model of the own-data example (README, "Own data"): softmax regression on the 13 wine features.

`fedmarket owner create` publishes this file; every trainer and the aggregator run it to build the model,
so it must define `build_model()` returning a fresh torch module that maps 13 features to 3 class logits.
"""

from torch import nn


def build_model() -> nn.Module:
    """Linear 13 -> 3 (42 parameters, all in the proof view)."""
    return nn.Sequential(nn.Linear(13, 3))
