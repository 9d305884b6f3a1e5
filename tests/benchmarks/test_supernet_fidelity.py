"""benchmarks/supernet_fidelity.py: the verdict its page prints follows the issue's bar."""

from pathlib import Path

import pytest

from tests.benchmarks import load_script

REPO = Path(__file__).resolve().parents[2]


F = load_script("supernet_fidelity")


def _row(kind, name, tau, diff=None):
    row = {"kind": kind, "name": name, "note": "", "kendall_tau": tau, "tau_low": tau - 0.1,
           "tau_high": tau + 0.1, "spearman_rho": tau, "top_k_overlap": 0.5, "tau_seed0": tau,
           "matched": {"pairs": 10, "ratio": 1.25, "tau": 0.1, "tau_low": 0.0,
                       "tau_high": 0.2}}
    if diff is not None:
        row["vs_best_baseline"] = {"difference": diff[0], "low": diff[1], "high": diff[2],
                                   "clearly_above": diff[1] > 0}
    return row


def _doc(rows, ceiling=0.8):
    fid = {"kendall_tau": ceiling, "tau_low": ceiling - 0.1, "tau_high": ceiling + 0.1}
    return {"date": "today", "target_tau": 0.6, "default_row": "naswot / 1 x 128 train",
            "seed_noise": {"n": 12, "mean_abs_diff": 0.005, "max_abs_diff": 0.01,
                           "fidelity": fid},
            "ground_truth": {"archs": 48, "runs": 60, "path": "gt", "recipe_id": "r",
                             "recipe": {"epochs": 1, "train_images": None, "optimizer": "sgd",
                                        "lr": 0.1, "batch_size": 128, "augmentation": "none",
                                        "val_images": 5000}},
            "variants": {}, "rows": rows}


@pytest.mark.parametrize("tau, diff, verdict", [
    (0.70, (0.15, 0.05, 0.25), "**passes**"),
    (0.70, (0.15, -0.01, 0.25), "**does not pass** (not clearly above predicted latency"),
    (0.55, (0.15, 0.05, 0.25), "**does not pass** (below the bar 0.60)"),
])
def test_default_evaluator_passes_only_above_the_bar_and_clearly_above_the_baseline(
        tau, diff, verdict):
    rows = [_row("baseline", "predicted latency", 0.5), _row("baseline", "MACs", 0.4),
            _row("zero-cost", "naswot / 1 x 128 train", tau, diff)]
    text = F.render(_doc(rows))
    line = next(x for x in text.splitlines() if x.startswith("The default evaluator"))
    assert "`naswot / 1 x 128 train`" in line and verdict in line


def test_a_low_seed_ceiling_lowers_the_bar_to_nine_tenths_of_it():
    rows = [_row("baseline", "predicted latency", 0.3),
            _row("zero-cost", "naswot / 1 x 128 train", 0.40, (0.1, 0.02, 0.2))]
    text = F.render(_doc(rows, ceiling=0.42))
    assert "The bar for an evaluator is τ ≥ 0.38 (0.9 x the ceiling)" in text
    assert "**passes**" in text


@pytest.mark.parametrize("searches, says", [
    (40, "mean stand-alone validation accuracy of the picks `rl` 87.60%"),
    (12, "in progress (12 of 40 searches, 30 of 30 trainings known so far)"),
])
def test_the_search_check_quotes_the_protocol_page_only_when_complete(searches, says):
    rows = [_row("baseline", "predicted latency", 0.3),
            _row("supernet", "shipped / 2000 val", 0.5, (0.2, 0.1, 0.3))]
    doc = _doc(rows)
    doc["default_row"] = "shipped / 2000 val"
    doc["search_check"] = {"protocol_commit": "abcdef1234567",
                           "progress": {"searches_done": searches, "searches_planned": 40,
                                        "trainings_done": 30, "trainings_known": 30},
                           "groups": [{"strategy": "rl", "scored": 10, "val_mean": 0.876,
                                       "val_se": 0.002}]}
    text = F.render(doc)
    assert "(commit abcdef1234)" in text and says in text


def test_the_held_out_table_uses_only_the_later_networks_and_its_own_best_baseline(
        monkeypatch):
    keys = [f"a{i}" for i in range(20)]
    later = set(keys[10:])
    monkeypatch.setattr(F, "held_out_archs", lambda study, truth_set: later)
    truth = [float(i) for i in range(20)]
    # latency ranks the first draw perfectly and the later one backwards; MACs the reverse
    latency = truth[:10] + truth[10:][::-1]
    macs = truth[:10][::-1] + truth[10:]
    scores = {"predicted latency": latency, "MACs": macs, "naswot / 1 x 128 train": truth}
    rows = [{"name": n, "kind": "baseline"} for n in ("predicted latency", "MACs")]
    rows.append({"name": "naswot / 1 x 128 train", "kind": "zero-cost"})
    held = F.held_out_rows(None, None, None, keys, truth, rows, scores)
    assert held["archs"] == 10 and held["best_baseline"] == "MACs"
    by = {r["name"]: r for r in held["rows"]}
    assert by["predicted latency"]["kendall_tau"] == pytest.approx(-1.0)
    assert by["naswot / 1 x 128 train"]["kendall_tau"] == pytest.approx(1.0)
    assert by["naswot / 1 x 128 train"]["vs_best_baseline"]["difference"] == pytest.approx(0.0)
    doc = _doc([_row("baseline", "predicted latency", 0.5)])
    doc["held_out"] = held
    text = F.render(doc)
    assert "## Held out: trained after the shipped supernet was chosen (10 architectures)" in text
    assert "| naswot | 1 x 128 train | **1.000**" in text


def test_without_later_networks_there_is_no_held_out_table(monkeypatch):
    monkeypatch.setattr(F, "held_out_archs", lambda study, truth_set: set())
    rows = [{"name": "MACs", "kind": "baseline"}]
    assert F.held_out_rows(None, None, None, ["a"], [1.0], rows, {"MACs": [1.0]}) is None


def test_a_ceiling_from_few_seed_pairs_does_not_lower_the_bar():
    rows = [_row("baseline", "predicted latency", 0.3),
            _row("zero-cost", "naswot / 1 x 128 train", 0.50, (0.2, 0.05, 0.3))]
    doc = _doc(rows, ceiling=0.42)
    doc["seed_noise"]["n"] = 4
    doc["space"], doc["chosen_here"], doc["top_k"] = "nasnet", False, 4
    text = F.render(doc)
    assert "| top-4 overlap |" in text and "nothing was chosen on this ground truth" in text
    assert text.startswith("# Rank fidelity of nasnet evaluators")
    assert "The bar for an evaluator is τ ≥ 0.60 (0.6; 4 pairs are too few" in text
    assert "`mobile-nas search --space nasnet`" in text
    assert "below the bar 0.60" in text


def test_each_space_reads_its_own_ground_truth_and_recipe():
    nasnet = F.STUDIES["nasnet"]
    assert nasnet.recipe.optimizer == "adamw"  # the cell set's header, not the mobile default
    assert F.STUDIES["fmnist28"].recipe.optimizer == "sgd"
    assert F.default_row(nasnet) == "default / 2000 val"  # no shipped cell supernet
    assert F.default_row(F.STUDIES["fmnist28"]) == "shipped / 2000 val"


def test_a_study_without_its_ground_truth_is_one_error_line_and_exit_2(tmp_path, monkeypatch,
                                                                         capsys):
    from dataclasses import replace

    missing = replace(F.STUDIES["nasnet"], ground_truth=tmp_path / "none")
    monkeypatch.setitem(F.STUDIES, "nasnet", missing)
    assert F.main(["--space", "nasnet", "--work", str(tmp_path), "report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no ground-truth header" in err[0]


@pytest.mark.parametrize("space, archs, pairs", [("fmnist28", 48, 12), ("nasnet", 16, 4)])
def test_the_committed_ground_truth_sets_load_with_their_own_recipe(space, archs, pairs):
    from mobile_nas.space import get_space

    study = F.STUDIES[space]
    truth_set, seed0, keys = F.ground_truth_archs(study, get_space(space))
    assert len(keys) >= archs and len(truth_set.seed_pairs(0, 1)) >= pairs
    assert truth_set.header["recipe_id"] == study.recipe.recipe_id


def test_cached_scores_resume_without_rescoring_or_building_an_evaluator(tmp_path):
    from mobile_nas.space import get_space

    space = get_space("fmnist28")
    archs = list(dict.fromkeys(space.sample(i) for i in range(3)))
    assert len(archs) == 3
    cache_path = tmp_path / "scores.json"
    built = []

    class Counting:
        def evaluate(self, arch):
            return float(len(arch.to_string()))

    def make():
        built.append(1)
        return Counting()

    first = F.cached_scores(make, archs[:2], cache_path)
    assert len(first) == 2 and len(built) == 1
    again = F.cached_scores(make, archs[:2], cache_path)  # all cached: nothing built
    assert again == first and len(built) == 1
    resumed = F.cached_scores(make, archs, cache_path)
    assert len(resumed) == 3 and len(built) == 2
    assert resumed[archs[2].to_string()]["score"] == float(len(archs[2].to_string()))


def test_the_held_out_networks_are_those_trained_after_the_shipped_file_was_created():
    from types import SimpleNamespace as NS

    created = F.held_out_cutoff(F.STUDIES["fmnist28"])
    assert created is not None
    rows = [NS(arch="early", finished_at="2026-01-01T00:00:00+00:00"),
            NS(arch="both", finished_at="2026-01-01T00:00:00+00:00"),
            NS(arch="both", finished_at="2099-01-01T00:00:00+00:00"),
            NS(arch="late", finished_at="2099-01-01T00:00:00+00:00")]
    assert F.held_out_archs(F.STUDIES["fmnist28"], NS(rows=rows)) == {"late"}
    assert F.held_out_archs(F.STUDIES["nasnet"], NS(rows=rows)) == set()  # nothing ships


def test_the_shipped_supernets_tau_recomputes_from_the_committed_scores():
    """The page's τ of the shipped supernet (and of every row whose scores it commits), on
    all architectures and on the held-out ones, from benchmarks/results/supernet_fidelity.json
    and the ground truth alone, with scipy."""
    import csv
    import json
    from datetime import datetime

    from scipy.stats import kendalltau

    from mobile_nas.pretrained import pretrained_supernet_path, read_metadata
    from mobile_nas.report.protocol import file_sha256

    doc = json.loads((REPO / "benchmarks/results/supernet_fidelity.json").read_text())
    page = (REPO / "benchmarks/results/supernet_fidelity.md").read_text()
    with open(REPO / "benchmarks/data/fmnist28_standalone.csv") as fh:
        runs = list(csv.DictReader(fh))
    val: dict[str, list[float]] = {}
    finished: dict[str, list[datetime]] = {}
    for r in runs:
        val.setdefault(r["arch"], []).append(float(r["val_accuracy"]))
        finished.setdefault(r["arch"], []).append(datetime.fromisoformat(r["finished_at"]))
    assert sorted(doc["archs"]) == sorted(val)  # every network of the ground truth
    truth = [sum(val[a]) / len(val[a]) for a in doc["archs"]]
    shipped = pretrained_supernet_path("fmnist28")
    assert doc["artifacts"]["supernet_sha256"] == file_sha256(shipped)
    created = datetime.fromisoformat(read_metadata(shipped)["created"])
    held = [i for i, a in enumerate(doc["archs"]) if min(finished[a]) > created]
    assert len(held) == doc["held_out"]["archs"]
    held_rows = {r["name"]: r for r in doc["held_out"]["rows"]}
    names = {r["name"] for r in doc["rows"]}
    assert {"shipped / 500 val", "shipped / 2000 val", "naswot / 1 x 128 train",
            "synflow / data-free"} <= names
    for r in doc["rows"]:
        tau = kendalltau(truth, r["scores"]).statistic
        assert tau == pytest.approx(r["kendall_tau"], abs=1e-12), r["name"]
        name, _, budget = r["name"].partition(" / ")
        assert f"| {name} | {budget or '-'} | **{tau:.3f}**" in page, r["name"]
        sub = kendalltau([truth[i] for i in held], [r["scores"][i] for i in held]).statistic
        assert sub == pytest.approx(held_rows[r["name"]]["kendall_tau"], abs=1e-12)
