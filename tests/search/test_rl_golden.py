"""The ``rl`` updates reproduce, proposal for proposal, what the controller did before its
update rules were named (fixture recorded at commit 596fa98 by ``_record()`` below, with
the options of that time): the default (``update="elite"``), and the old ``risk_quantile=0``
paths that became ``update="ppo"`` and ``update="reinforce"``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobile_nas.search.strategy import make_strategy
from mobile_nas.space import get_space

FIXTURE = Path(__file__).parent / "fixtures" / "rl_golden.json"
N = 40

# name -> (space, options today, options before the rename)
CASES: dict[str, tuple[str, dict, dict]] = {
    "default_nb201": ("nb201", {}, {}),
    "default_fmnist28": ("fmnist28", {}, {}),
    "default_nb201_batch4": ("nb201", {"batch_size": 4}, {"batch_size": 4}),
    "ppo_nb201": ("nb201", {"update": "ppo"}, {"risk_quantile": 0.0}),
    "reinforce_nb201": ("nb201", {"update": "reinforce"},
                        {"risk_quantile": 0.0, "ppo_epochs": 0}),
}


def _reward(indices: tuple[int, ...]) -> float:
    """Deterministic, with ties: choice 1 on even decisions, large choices on odd ones, mod 7."""
    return float(sum((i + 1) * (x if i % 2 else (x == 1)) for i, x in enumerate(indices)) % 7)


def _run(space_name: str, options: dict) -> list[list[int]]:
    space = get_space(space_name)
    s = make_strategy("rl", space=space, seed=0, **options)
    out = []
    for _ in range(N):
        arch = s.ask()
        out.append(list(arch.indices()))
        s.tell(arch, _reward(arch.indices()))
    return out


def _record() -> None:  # run against the pre-rename code to (re)write the fixture
    FIXTURE.write_text(json.dumps({k: _run(sp, old) for k, (sp, _, old) in CASES.items()}))


@pytest.mark.parametrize("case", sorted(CASES))
def test_proposals_match_the_pre_rename_controller(case):
    space_name, options, _ = CASES[case]
    assert _run(space_name, options) == json.loads(FIXTURE.read_text())[case]


if __name__ == "__main__":
    _record()
