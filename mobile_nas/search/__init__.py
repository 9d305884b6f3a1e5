"""The search: strategies, rewards, evaluators, costs and the resumable Optuna runner.

Loading the package registers the built-in strategies (:mod:`~mobile_nas.search.strategies`).
"""

import mobile_nas.search.strategies  # noqa: F401  (registers the built-in strategies)
from mobile_nas.search.evaluator import Evaluator, EvaluatorError, TableEvaluator
from mobile_nas.search.rewards import Reward, RewardError, Target, make_reward
from mobile_nas.search.strategy import (
    STRATEGIES,
    Strategy,
    StrategyError,
    make_strategy,
    register_strategy,
)

__all__ = [
    "Evaluator", "EvaluatorError", "Reward", "RewardError", "STRATEGIES", "Strategy",
    "StrategyError", "TableEvaluator", "Target", "make_reward", "make_strategy",
    "register_strategy",
]
