"""Built-in strategies: ``random``, ``evolution`` (regularized evolution), ``local`` (local
search with restarts, White et al. 2020) and ``rl``
(LSTM controller; by default maximum likelihood on its elite architectures,
REINFORCE and PPO as options). Importing this package registers them;
``tpe`` and ``nsga2`` are Optuna's samplers (see :mod:`mobile_nas.search.sampler`)."""

from mobile_nas.search.strategies.evolution import RegularizedEvolution
from mobile_nas.search.strategies.local import LocalSearch
from mobile_nas.search.strategies.random import RandomSearch
from mobile_nas.search.strategies.reinforce import ReinforceController, RLController

__all__ = ["LocalSearch", "RLController", "RandomSearch", "RegularizedEvolution",
           "ReinforceController"]
