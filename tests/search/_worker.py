"""A search worker process for the resume and two-worker tests:
``python -m tests.search._worker OUT STORAGE TRIALS STRATEGY DELAY_S``."""

import sys
import time

from mobile_nas.search.runner import SearchConfig, run_search
from mobile_nas.space import get_space
from tests.search.conftest import WidthEvaluator, macs_latency_ms


class SlowEvaluator(WidthEvaluator):
    def __init__(self, *, space, delay_s: float) -> None:
        super().__init__(space=space)
        self.delay_s = delay_s

    def evaluate(self, arch):
        time.sleep(self.delay_s)
        return super().evaluate(arch)


def main(out: str, storage: str, trials: str, strategy: str, delay_s: str) -> None:
    space = get_space("fmnist28")
    options = {"batch_size": 2} if strategy == "rl" else {}
    config = SearchConfig(space="fmnist28", strategy=strategy, trials=int(trials),
                          out_dir=out, storage=storage, resume=True, latency_target_ms=5.0,
                          progress=False, heartbeat_s=1, grace_s=3,
                          strategy_options=options, skip_margin=None)
    run_search(config, evaluator=SlowEvaluator(space=space, delay_s=float(delay_s)),
               latency_fn=macs_latency_ms)


if __name__ == "__main__":
    main(*sys.argv[1:])
