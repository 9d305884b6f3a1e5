"""Local search (``local``) on a tiny crafted table whose local optima and basins are known."""

import pytest

from mobile_nas.search.strategy import StrategyError, make_strategy
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.decision import Decision


class TinySpace(SearchSpace):
    """Two decisions of three choices: 9 architectures (not registered: tests only)."""

    def __init__(self):
        super().__init__(name="tiny_local", decisions=[Decision("a", (0, 1, 2)),
                                                        Decision("b", (0, 1, 2))],
                         input_shape=(1, 1, 1), num_classes=2)

    def encode(self, arch):
        return f"{arch.values[0]}{arch.values[1]}"

    def decode(self, text):
        return Architecture(self.name, (int(text[0]), int(text[1])))

    def layers(self, arch):
        return []

    def enumerate_layers(self):
        return []


# reward[(a, b)]; neighbours differ in one decision. Two local optima: L = (0, 0) (0.9) and
# the global G = (2, 2) (1.0). Steepest ascent from (1, 0) and (0, 1) goes to L (their best
# neighbour is L); from (0, 2), (1, 1), (1, 2), (2, 0), (2, 1) it reaches G.
TABLE = {(0, 0): 0.9, (0, 1): 0.5, (0, 2): 0.4,
         (1, 0): 0.6, (1, 1): 0.55, (1, 2): 0.8,
         (2, 0): 0.3, (2, 1): 0.7, (2, 2): 1.0}
BASIN = {(0, 0): (0, 0), (1, 0): (0, 0), (0, 1): (0, 0),
         (0, 2): (2, 2), (1, 1): (2, 2), (1, 2): (2, 2), (2, 0): (2, 2), (2, 1): (2, 2),
         (2, 2): (2, 2)}


def _climb(seed, **options):
    """Runs local search until its first local optimum; returns (start, optimum, asked)."""
    space = TinySpace()
    s = make_strategy("local", space=space, seed=seed, **options)
    asked = []
    while not s.optima:
        arch = s.ask()
        asked.append(arch.values)
        s.tell(arch, TABLE[arch.values])
        assert len(asked) < 50
    return asked[0], s.optima[0], asked, s


@pytest.mark.parametrize("seed", range(12))
def test_local_search_climbs_to_the_optimum_of_its_basin(seed):
    start, optimum, asked, s = _climb(seed)
    assert optimum == BASIN[start]
    assert len(asked) == len(set(asked))  # nothing is asked twice
    # the ask that found the optimum restarted: its proposal is a new random start
    assert s.current is None and s.starts == [asked[-1]]


def test_both_optima_are_found_and_nothing_else_is_called_one():
    space = TinySpace()
    s = make_strategy("local", space=space, seed=0)
    for _ in range(40):
        arch = s.ask()
        s.tell(arch, TABLE[arch.values])
    assert set(s.optima) == {(0, 0), (2, 2)}


def test_best_of_initial_samples_is_the_start_and_first_improvement_moves_early():
    start, optimum, asked, _ = _climb(3, initial_samples=3)
    first3 = asked[:3]
    assert optimum == BASIN[max(first3, key=TABLE.get)]
    s = make_strategy("local", space=TinySpace(), seed=0, first_improvement=True)
    s.tell(Architecture("tiny_local", (1, 1)), TABLE[(1, 1)])
    s.starts = [(1, 1)]  # as if (1, 1) had been asked as the start
    s.ask()
    assert s.current == (1, 1)
    s.tell(Architecture("tiny_local", (1, 0)), TABLE[(1, 0)])  # 0.6 > 0.55: move at once
    assert s.current == (1, 0)


def test_bad_options_are_refused():
    with pytest.raises(StrategyError, match="initial_samples"):
        make_strategy("local", space=TinySpace(), initial_samples=0)
    with pytest.raises(StrategyError, match="bad options for strategy 'local'"):
        make_strategy("local", space=TinySpace(), restarts=3)
