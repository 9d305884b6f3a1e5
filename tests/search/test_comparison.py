"""mobile_nas.search.comparison: per-setting means, the Wilcoxon signed-rank test over
settings, Holm, and the pooled Mann-Whitney test beside them, on crafted cases whose expected
p-values are worked out here by enumerating the signed-rank null distribution."""

import itertools
from fractions import Fraction

import numpy as np
import pytest

from mobile_nas.search.comparison import (
    compare_pairs,
    holm,
    paired_wilcoxon,
    per_setting_means,
    pooled_mann_whitney,
    with_holm,
)


def exact_signed_rank_p_less(differences):
    """P(W+ <= observed W+) under H0 (each |d|'s sign + or - with probability 1/2), by
    enumerating all 2^n sign patterns; distinct nonzero |d| only."""
    d = [x for x in differences if x != 0]
    ranks = {v: r + 1 for r, v in enumerate(sorted(abs(x) for x in d))}
    observed = sum(ranks[abs(x)] for x in d if x > 0)
    n = len(d)
    hits = sum(sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s) <= observed
               for signs in itertools.product((False, True), repeat=n))
    return Fraction(hits, 2 ** n)


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_the_enumerated_null_distribution_matches_the_textbook():
    # n = 4: 16 sign patterns; W+ = 0 only when all are negative, W+ <= 1 twice
    assert exact_signed_rank_p_less([-1, -2, -3, -4]) == Fraction(1, 16)
    assert exact_signed_rank_p_less([1, -2, -3, -4]) == Fraction(2, 16)
    assert exact_signed_rank_p_less([-x for x in range(1, 11)]) == Fraction(1, 1024)


def test_many_runs_on_few_settings_a_tiny_pooled_p_but_no_per_setting_evidence():
    """Strategy a is better than b on every one of 4 settings, with 500 seeds each. Pooled,
    2,000 runs against 2,000 give a Mann-Whitney p far below 1e-10; per setting, 4 of 4
    settings in a's favour is what chance gives once in 16 (one-sided exact p = 1/16)."""
    rng = np.random.default_rng(0)
    levels = [0.0, 10.0, 20.0, 30.0]  # settings of very different difficulty
    a = [(k, lv - 1.0 + rng.normal()) for k, lv in enumerate(levels) for _ in range(500)]
    b = [(k, lv + rng.normal()) for k, lv in enumerate(levels) for _ in range(500)]
    [c] = compare_pairs({"a": a, "b": b}, [("a", "b")], alternative="less")
    assert c.settings == 4 and c.a_better == 4 and c.b_better == 0 and c.ties == 0
    expected = exact_signed_rank_p_less(
        [per_setting_means(a)[k] - per_setting_means(b)[k] for k in range(4)])
    assert expected == Fraction(1, 16)
    assert c.p == pytest.approx(float(expected))  # 0.0625: not significant at 0.05
    assert c.pooled_p < 1e-10 and c.runs_a == c.runs_b == 2000
    assert c.mean_difference == pytest.approx(-1.0, abs=0.1)


def test_better_on_most_settings_one_small_loss():
    """a better on 3 of 4 settings, the one loss the smallest difference: W+ = 1, exact
    one-sided p = 2/16."""
    a = {"s1": 1.0, "s2": 2.0, "s3": 3.0, "s4": 4.0}
    b = {"s1": 0.9, "s2": 2.5, "s3": 3.7, "s4": 4.9}  # a - b: +0.1, -0.5, -0.7, -0.9
    c = paired_wilcoxon(a, b, alternative="less", a_name="a", b_name="b")
    assert (c.a_lower, c.a_higher, c.ties) == (3, 1, 0) and c.a_better == 3
    assert c.p == pytest.approx(float(exact_signed_rank_p_less([0.1, -0.5, -0.7, -0.9])))
    assert c.p == pytest.approx(2 / 16)
    assert c.statistic == 1.0  # the rank of the one positive difference


def test_few_runs_on_many_settings_per_setting_evidence_the_pooled_test_misses():
    """a is better than b on each of 10 settings by a small margin; the settings' levels
    differ by 100, the seeds within a setting by 10. Pooled, the margin drowns (of the
    900 (a, b) pairs, 90 are within a setting and 6/9 of those favour a; the other 810
    split evenly: U = 465 of 900); per setting, 10 of 10 in a's favour has exact one-sided
    p = 1/1024."""
    a, b = [], []
    for k in range(10):
        for j in range(3):
            b.append((k, 100.0 * k + 10.0 * j))
            a.append((k, 100.0 * k + 10.0 * j - (0.1 + 0.01 * k)))  # distinct margins
    [c] = compare_pairs({"a": a, "b": b}, [("a", "b")], alternative="less")
    assert c.a_better == 10 and c.settings == 10
    assert c.p == pytest.approx(1 / 1024)
    assert c.p == pytest.approx(float(exact_signed_rank_p_less(
        [-(0.1 + 0.01 * k) for k in range(10)])))
    assert c.pooled_p > 0.2  # not significant pooled
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu([v for _, v in b], [v for _, v in a], alternative="greater").statistic
    assert u == 465  # b above a in 465 of the 900 pairs, as counted above


def test_holm_over_a_family_of_the_two_crafted_cases():
    """Wilcoxon p-values 1/16 and 1/1024: Holm gives 2/1024 to the smaller and
    max(2/1024, 1/16) = 1/16 to the larger; the pooled family is adjusted on its own."""
    rng = np.random.default_rng(0)
    levels = [0.0, 10.0, 20.0, 30.0]
    few = {"a": [(k, lv - 1.0 + rng.normal()) for k, lv in enumerate(levels)
                 for _ in range(500)],
           "b": [(k, lv + rng.normal()) for k, lv in enumerate(levels) for _ in range(500)]}
    many = {"a": [(k, 100.0 * k + 10.0 * j - (0.1 + 0.01 * k)) for k in range(10)
                  for j in range(3)],
            "b": [(k, 100.0 * k + 10.0 * j) for k in range(10) for j in range(3)]}
    family = (compare_pairs(few, [("a", "b")], alternative="less")
              + compare_pairs(many, [("a", "b")], alternative="less"))
    adjusted = with_holm(family)
    assert [c.p_holm for c in adjusted] == pytest.approx([1 / 16, 2 / 1024])
    assert [c.pooled_p_holm for c in adjusted] == pytest.approx(
        holm([family[0].pooled_p, family[1].pooled_p]))
    # the verdicts at 0.05 swap between the two tests
    assert adjusted[0].pooled_p_holm < 0.05 <= adjusted[0].p_holm
    assert adjusted[1].p_holm < 0.05 <= adjusted[1].pooled_p_holm


def test_greater_alternative_and_no_differences():
    a = {k: float(k) + 1.0 for k in range(6)}
    b = {k: float(k) for k in range(6)}
    c = paired_wilcoxon(a, b, alternative="greater")
    assert c.a_better == 6 and c.p == pytest.approx(1 / 64)
    same = paired_wilcoxon(b, b, alternative="less")
    assert same.ties == 6 and same.p == 1.0  # nothing differs: no evidence
    with pytest.raises(ValueError, match="share no setting"):
        paired_wilcoxon({1: 1.0}, {2: 1.0}, alternative="less")
    with pytest.raises(ValueError, match="alternative"):
        paired_wilcoxon(a, b, alternative="lower")
    assert pooled_mann_whitney([1.0], [2.0], alternative="less") == 1.0


def test_per_setting_means_average_each_settings_runs():
    means = per_setting_means([("x", 1.0), ("y", 5.0), ("x", 3.0)])
    assert means == {"x": 2.0, "y": 5.0}
