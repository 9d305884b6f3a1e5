"""A search worker process for the resume and multi-worker tests:
``python -m tests.search._worker OUT STORAGE TRIALS STRATEGY DELAY_S [DIE_AT]``.

With ``DIE_AT`` = N the worker SIGKILLs itself inside its N-th evaluation (1-based), so it
dies while it holds a RUNNING trial: no timing decides where the kill lands.
"""

import os
import signal
import sys
import time

from mobile_nas.search.runner import SearchConfig, run_search
from mobile_nas.space import get_space
from tests.search.conftest import WidthEvaluator, macs_latency_ms


class SlowEvaluator(WidthEvaluator):
    def __init__(self, *, space, delay_s: float, die_at: int | None = None) -> None:
        super().__init__(space=space)
        self.delay_s = delay_s
        self.die_at = die_at
        self.calls = 0

    def evaluate(self, arch):
        self.calls += 1
        time.sleep(self.delay_s)
        if self.calls == self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(arch)


def main(out: str, storage: str, trials: str, strategy: str, delay_s: str,
         die_at: str | None = None) -> None:
    space = get_space("fmnist28")
    options = {"batch_size": 2} if strategy == "rl" else {}
    config = SearchConfig(space="fmnist28", strategy=strategy, trials=int(trials),
                          out_dir=out, storage=storage, resume=True, latency_target_ms=5.0,
                          progress=False, heartbeat_s=1, grace_s=3,
                          strategy_options=options, skip_margin=None)
    evaluator = SlowEvaluator(space=space, delay_s=float(delay_s),
                              die_at=int(die_at) if die_at else None)
    run_search(config, evaluator=evaluator, latency_fn=macs_latency_ms)


if __name__ == "__main__":
    main(*sys.argv[1:])
