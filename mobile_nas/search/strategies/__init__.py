"""Built-in strategies: ``random``, ``evolution`` (regularized evolution) and ``rl``
(LSTM controller trained with REINFORCE/PPO). Importing this package registers them;
``tpe`` and ``nsga2`` are Optuna's samplers (see :mod:`mobile_nas.search.sampler`)."""

from mobile_nas.search.strategies.evolution import RegularizedEvolution
from mobile_nas.search.strategies.random import RandomSearch
from mobile_nas.search.strategies.reinforce import ReinforceController

__all__ = ["RandomSearch", "RegularizedEvolution", "ReinforceController"]
