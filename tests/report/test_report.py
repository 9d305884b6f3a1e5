import base64
import re

import numpy as np
import pytest

from mobile_nas.report.build import build_report
from mobile_nas.space import get_space

PNG = b"\x89PNG\r\n\x1a\n"


def _run_dir(tmp_path, n=25, space="fmnist28", latency="table", **meta_extra):
    """A RUN_DIR written by the search engineer's own writer from an Optuna study."""
    import optuna

    from mobile_nas.search.outputs import write_outputs
    from mobile_nas.search.rewards import make_reward

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reward = make_reward(latency_target_ms=0.5)
    sp = get_space(space)
    rng = np.random.default_rng(0)
    study = optuna.create_study(direction="maximize")
    for i in range(n):
        arch = sp.sample(rng)
        macs = int(rng.integers(1_000_000, 8_000_000))  # costs are not what is tested here
        acc = float(0.7 + 0.2 * rng.random())
        lat = float(0.2 + macs / 1e7)
        r = acc * (lat / 0.5) ** -0.07
        study.add_trial(optuna.trial.create_trial(
            value=r, user_attrs={"arch": arch.to_string(), "accuracy": acc, "latency_ms": lat,
                                 "macs": macs, "params": macs // 30, "reward": r,
                                 "feasible": lat <= 0.5}))
        del i
    meta = {"space": space, "strategy": "rl", "dataset": "fashion-mnist",
            "reward_fn": reward.to_json(), "latency": latency, **meta_extra}
    write_outputs(tmp_path, study, meta=meta)
    return tmp_path


def test_report_is_self_contained_with_all_plots(tmp_path):
    run = _run_dir(tmp_path)
    files = build_report(run)
    for name in ("pareto", "reward", "arch"):
        assert files.images[name].read_bytes().startswith(PNG)
    page = files.html.read_text()
    assert "report.html" == files.html.name
    # every image is inlined; nothing is fetched from elsewhere
    inlined = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(inlined) == len(files.images)
    assert all(base64.b64decode(s).startswith(PNG) for s in inlined)
    assert not re.search(r'(src|href)="(?!data:)', page)
    import json

    best = json.loads((run / "best.json").read_text())
    assert best["arch"] in page and "latency_ms 0.5" in page
    assert "stage 4" in page  # the stage-by-stage table


def _best_arch(run):
    import json

    return get_space("fmnist28").decode(json.loads((run / "best.json").read_text())["arch"])


def test_latency_breakdown_from_the_shipped_table(tmp_path, monkeypatch):
    from mobile_nas.cost.latency import LatencyTable, shipped_table_path
    from mobile_nas.report import plots

    path = shipped_table_path("fmnist28")
    assert path is not None, "the fmnist28 table ships in latency_tables/"
    drawn = {}
    real = plots.plot_latency_breakdown

    def spy(arch, per_layer, out, **kw):
        drawn.update(per_layer=per_layer, **kw)
        return real(arch, per_layer, out, **kw)

    monkeypatch.setattr(plots, "plot_latency_breakdown", spy)
    run = _run_dir(tmp_path)
    files = build_report(run)
    arch = _best_arch(run)
    table = LatencyTable.load(path)
    assert not table.missing(arch.search_space.layers(arch))  # it covers the whole space
    assert files.images["latency"].read_bytes().startswith(PNG) and not files.notes
    # one bar per layer of the network, each the table's entry for that layer (its
    # metadata's statistic, the median)
    assert table.metadata["statistic"] == "median"
    assert [k for k, _ in drawn["per_layer"]] == arch.search_space.layers(arch)
    assert [ms for _, ms in drawn["per_layer"]] == [
        table.entries[k.id].median_ms for k in arch.search_space.layers(arch)]
    assert drawn["source"] == f"table {path}" and drawn["total_ms"] > 0


def test_an_int8_run_is_broken_down_with_the_int8_table(tmp_path, monkeypatch):
    from mobile_nas.cost.latency import shipped_table_path
    from mobile_nas.report import plots

    drawn = {}
    real = plots.plot_latency_breakdown

    def spy(arch, per_layer, out, **kw):
        drawn.update(**kw)
        return real(arch, per_layer, out, **kw)

    monkeypatch.setattr(plots, "plot_latency_breakdown", spy)
    # searched with --precision int8 --measure: no table recorded, the INT8 one is meant
    build_report(_run_dir(tmp_path, latency="measured:onnxruntime:1thread",
                          precision="int8"))
    assert drawn["source"] == f"table {shipped_table_path('fmnist28', 'int8')}"


@pytest.mark.parametrize("prefix", ["", "table:"])  # as run_search records it
def test_a_table_lacking_the_best_networks_layers_is_a_note_not_a_plot(tmp_path, prefix):
    import json

    from tests.search.conftest import synthetic_table_json

    probe = tmp_path / "probe"  # the same seeded trials, to learn the best network first
    probe.mkdir()
    arch = _best_arch(_run_dir(probe))
    doc = synthetic_table_json(get_space("fmnist28"))
    gone = arch.search_space.layers(arch)[0].id
    del doc["entries"][gone]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(doc))
    (tmp_path / "run").mkdir()
    run = _run_dir(tmp_path / "run", latency=prefix + str(partial))  # searched with it
    assert _best_arch(run) == arch
    files = build_report(run)
    assert "latency" not in files.images and not (run / "latency.png").exists()
    assert len(files.notes) == 1 and "per-layer breakdown skipped" in files.notes[0]
    assert gone in files.notes[0] and "Notes" in files.html.read_text()


def test_report_cli_and_bad_input(run_cli, tmp_path):
    (tmp_path / "run").mkdir()
    run = _run_dir(tmp_path / "run", n=8)
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, stderr = run_cli("report", str(run), "--out", str(out))
    assert code == 0, stderr
    assert (out / "report.html").is_file() and "report.html" in stdout
    code, _, err = run_cli("report", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    (run / "best.json").write_text("{broken")
    code, _, err = run_cli("report", str(run))
    assert code == 2 and "cannot read" in err and "best.json" in err
    (run / "best.json").unlink()
    code, _, err = run_cli("report", str(run))
    assert code == 2 and "best.json' is missing" in err


def test_cell_space_runs_are_reported_layer_by_layer(tmp_path):
    run = _run_dir(tmp_path, n=6, space="nb201")
    files = build_report(run)
    assert files.images["arch"].read_bytes().startswith(PNG)
    assert "layer 0" in files.html.read_text()


def test_runs_that_stored_the_reward_definition_as_reward_still_report(tmp_path):
    import json

    run = _run_dir(tmp_path, n=5)
    for name in ("best.json", "pareto.json"):  # the first output format (schema 1)
        doc = json.loads((run / name).read_text())
        doc["reward"] = doc.pop("reward_fn")
        (run / name).write_text(json.dumps(doc))
    files = build_report(run)
    assert "latency_ms 0.5" in files.html.read_text()
