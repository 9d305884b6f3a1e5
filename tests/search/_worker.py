"""A search worker process for the resume and multi-worker tests:
``python -m tests.search._worker OUT STORAGE TRIALS STRATEGY DELAY_S [DIE_AT]``.

With ``DIE_AT`` = N the worker SIGKILLs itself inside its N-th evaluation (1-based), so it
dies while it holds a RUNNING trial: no timing decides where the kill lands.

Environment (for tests that must not depend on who runs when):

- ``WORKER_GRACE_S``: Optuna's grace period before another process fails this worker's
  running trial (default 3: a killed worker's trial is failed soon);
- ``WORKER_MEET_DIR``, ``WORKER_MEET_N``, ``WORKER_MEET_AT`` (comma-separated evaluation
  numbers, 1-based): at each of those evaluations the worker waits inside the evaluation
  until ``WORKER_MEET_N`` workers have reached the same one (files in the folder), so
  the tests order events instead of hoping for a timing window.
"""

import os
import signal
import sys
import time
from pathlib import Path

from mobile_nas.search.runner import SearchConfig, run_search
from mobile_nas.space import get_space
from tests.search.conftest import WidthEvaluator, macs_latency_ms

#: a rendezvous that takes this long means a worker died or never started: fail loudly
MEET_TIMEOUT_S = 600


def meet(folder: Path, name: str, n: int) -> None:
    """Waits until ``n`` processes have called ``meet`` with ``name`` in ``folder``."""
    (folder / f"{name}.{os.getpid()}").touch()
    deadline = time.monotonic() + MEET_TIMEOUT_S
    while len(list(folder.glob(f"{name}.*"))) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"rendezvous {name!r} in {folder}: fewer than {n} workers")
        time.sleep(0.05)


class SlowEvaluator(WidthEvaluator):
    def __init__(self, *, space, delay_s: float, die_at: int | None = None) -> None:
        super().__init__(space=space)
        self.delay_s = delay_s
        self.die_at = die_at
        self.calls = 0
        meet_dir = os.environ.get("WORKER_MEET_DIR")
        self.meet_dir = Path(meet_dir) if meet_dir else None
        self.meet_n = int(os.environ.get("WORKER_MEET_N", "0"))
        self.meet_at = {int(k) for k in os.environ.get("WORKER_MEET_AT", "").split(",") if k}

    def evaluate(self, arch):
        self.calls += 1
        if self.meet_dir is not None and self.calls in self.meet_at:
            meet(self.meet_dir, f"eval{self.calls}", self.meet_n)
        time.sleep(self.delay_s)
        if self.calls == self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(arch)


def main(out: str, storage: str, trials: str, strategy: str, delay_s: str,
         die_at: str | None = None) -> None:
    space = get_space("fmnist28")
    # rl as in test_runner's _config: the LSTM proposes, so its updates show in the state
    options = {"batch_size": 2, "proposal": "sample"} if strategy == "rl" else {}
    config = SearchConfig(space="fmnist28", strategy=strategy, trials=int(trials),
                          out_dir=out, storage=storage, resume=True, latency_target_ms=5.0,
                          progress=False, heartbeat_s=1,
                          grace_s=int(os.environ.get("WORKER_GRACE_S", "3")),
                          strategy_options=options, skip_margin=None)
    evaluator = SlowEvaluator(space=space, delay_s=float(delay_s),
                              die_at=int(die_at) if die_at else None)
    run_search(config, evaluator=evaluator, latency_fn=macs_latency_ms)


if __name__ == "__main__":
    main(*sys.argv[1:])
