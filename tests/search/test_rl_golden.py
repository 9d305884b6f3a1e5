"""What the ``rl`` controller promises, proposal for proposal: for one seed and one torch
version, the same proposals on every run (a search resumed or re-run is the one it was).

It does not promise the same proposals under another torch version: its LSTM's initial
weights and its sampling come from torch's RNG, which a torch release may change without any
change in the controller's behaviour. So the golden proposals are recorded together with the
torch version that made them (``tests/search/fixtures/rl_golden.json``, first recorded at
commit 596fa98 before the update rules were named: the default ``update="elite"``, and the
old ``risk_quantile=0`` paths that became ``update="ppo"`` and ``update="reinforce"``). Under
that version they must match; under another, the test records this version's proposals in
pytest's cache on its first run (and says so, as a skip) and compares later runs with them,
and ``python -m tests.search.test_rl_golden`` rewrites the fixture for the torch at hand
when the project moves to it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mobile_nas.search.strategy import make_strategy
from mobile_nas.space import get_space

FIXTURE = Path(__file__).parent / "fixtures" / "rl_golden.json"
N = 40
SEED = 0

# name -> (space, options)
# the "sample_*", "ppo_*" and "reinforce_*" cases: recorded at 596fa98 as the defaults of then
# (every proposal an LSTM draw, proposal="sample" since 2026-12-07); the "default_*" cases:
# proposal="edit" (the default since then), recorded with torch 2.14.1
SAMPLE = {"proposal": "sample"}
CASES: dict[str, tuple[str, dict]] = {
    "sample_nb201": ("nb201", SAMPLE),
    "sample_fmnist28": ("fmnist28", SAMPLE),
    "sample_nb201_batch4": ("nb201", {**SAMPLE, "batch_size": 4}),
    "ppo_nb201": ("nb201", {**SAMPLE, "update": "ppo"}),
    "reinforce_nb201": ("nb201", {**SAMPLE, "update": "reinforce"}),
    "default_nb201": ("nb201", {}),
    "default_fmnist28": ("fmnist28", {}),
    "edit_policy_restart_nb201": ("nb201", {"restart": "policy"}),
}


def torch_version() -> str:
    """torch's release, without the build tag (``2.14.1+cu130`` -> ``2.14.1``)."""
    return torch.__version__.split("+")[0]


def _reward(indices: tuple[int, ...]) -> float:
    """Deterministic, with ties: choice 1 on even decisions, large choices on odd ones, mod 7."""
    return float(sum((i + 1) * (x if i % 2 else (x == 1)) for i, x in enumerate(indices)) % 7)


def _run(space_name: str, options: dict, seed: int = SEED) -> list[list[int]]:
    space = get_space(space_name)
    s = make_strategy("rl", space=space, seed=seed, **options)
    out = []
    for _ in range(N):
        arch = s.ask()
        out.append(list(arch.indices()))
        s.tell(arch, _reward(arch.indices()))
    return out


def _record() -> None:
    """Rewrites the fixture with this torch's proposals (when the project moves to it)."""
    FIXTURE.write_text(json.dumps({"torch": torch_version(), "n": N, "seed": SEED,
                                   "cases": {k: _run(sp, o) for k, (sp, o) in CASES.items()}}))


def test_the_same_seed_gives_the_same_proposals_and_another_seed_others():
    space_name, options = CASES["default_nb201"]
    first = _run(space_name, options)
    assert _run(space_name, options) == first
    assert _run(space_name, options, seed=SEED + 1) != first


@pytest.mark.parametrize("case", sorted(CASES))
def test_proposals_match_the_golden_of_this_torch_version(case, request):
    space_name, options = CASES[case]
    got = _run(space_name, options)
    golden = json.loads(FIXTURE.read_text())
    if golden["torch"] == torch_version():
        assert got == golden["cases"][case]
        return
    cache = getattr(request.config, "cache", None)
    if cache is None:
        pytest.skip(f"the fixture is torch {golden['torch']}'s and pytest's cache is off")
    key = f"mobile_nas/rl_golden/{torch_version()}/{case}"
    recorded = cache.get(key, None)
    if recorded is None:
        cache.set(key, got)
        pytest.skip(f"the fixture is torch {golden['torch']}'s; recorded torch "
                    f"{torch_version()}'s proposals in pytest's cache for the next runs")
    assert got == recorded


def test_under_another_torch_version_the_first_run_records_and_later_runs_compare(
        monkeypatch):
    class Cache(dict):
        def get(self, key, default):
            return super().get(key, default)

        def set(self, key, value):
            self[key] = value

    request = SimpleNamespace(config=SimpleNamespace(cache=Cache()))
    monkeypatch.setattr(sys.modules[__name__], "torch_version", lambda: "0.0.0")
    with pytest.raises(pytest.skip.Exception, match="recorded torch 0.0.0's proposals"):
        test_proposals_match_the_golden_of_this_torch_version("default_nb201", request)
    test_proposals_match_the_golden_of_this_torch_version("default_nb201", request)
    (key,) = request.config.cache
    request.config.cache[key] = [[0] * len(proposal) for proposal in request.config.cache[key]]
    with pytest.raises(AssertionError):  # a controller that changed is caught
        test_proposals_match_the_golden_of_this_torch_version("default_nb201", request)


if __name__ == "__main__":
    _record()
