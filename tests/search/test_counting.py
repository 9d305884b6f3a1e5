"""Fair counting: per query and per distinct architecture, on a crafted sequence."""

import math

import numpy as np
import pytest

from mobile_nas.search.counting import best_so_far, prefix, repeat_flags

# queries a b a c b d e (a and b repeated); values and feasibility per query
KEYS = ["a", "b", "a", "c", "b", "d", "e"]
VALUES = [0.5, 0.7, 0.5, 0.9, 0.7, 0.6, 0.95]
FEASIBLE = [True, False, True, True, False, True, False]


def _eq(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (math.isnan(g) and math.isnan(w)) or g == pytest.approx(w)


def test_repeats_are_flagged_after_their_first_query():
    assert repeat_flags(KEYS) == [False, False, True, False, True, False, False]
    assert repeat_flags([]) == []


def test_best_so_far_per_query_charges_repeats():
    rep = repeat_flags(KEYS)
    _eq(best_so_far(VALUES, FEASIBLE, rep, view="query"),
        [0.5, 0.5, 0.5, 0.9, 0.9, 0.9, 0.9])
    # 7 queries are 5 distinct architectures: a b c d e
    _eq(best_so_far(VALUES, FEASIBLE, rep, view="distinct"), [0.5, 0.5, 0.9, 0.9, 0.9])


def test_distinct_view_reaches_further_for_the_same_budget():
    # at a budget of 4: per query a b a c -> best 0.9 (c is the 4th query); per distinct
    # a b c d -> also 0.9; at 3: per query a b a -> 0.5, per distinct a b c -> 0.9
    rep = repeat_flags(KEYS)
    q = best_so_far(VALUES, FEASIBLE, rep, view="query")
    d = best_so_far(VALUES, FEASIBLE, rep, view="distinct")
    assert q[2] == 0.5 and d[2] == 0.9


def test_nothing_feasible_yet_is_nan():
    rep = repeat_flags(["x", "y", "x"])
    _eq(best_so_far([0.3, 0.8, 0.3], [False, True, False], rep, view="query"),
        [np.nan, 0.8, 0.8])


def test_prefix_by_budget():
    rep = repeat_flags(KEYS)
    assert prefix(KEYS, rep, 3, view="query") == ["a", "b", "a"]
    assert prefix(KEYS, rep, 3, view="distinct") == ["a", "b", "a", "c", "b"]
    assert prefix(KEYS, rep, 5, view="distinct") == KEYS
    assert prefix(KEYS, rep, 50, view="distinct") == KEYS


def test_bad_view_and_lengths():
    with pytest.raises(ValueError, match="view"):
        best_so_far([1.0], [True], [False], view="trials")
    with pytest.raises(ValueError, match="differ in length"):
        best_so_far([1.0, 2.0], [True], [False], view="query")
