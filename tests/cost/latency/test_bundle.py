import ast
import json
import statistics
import subprocess
import sys
import zipfile

import pytest

from mobile_nas.cost.latency import WALL_MEDIAN, BundleError, LatencyTable
from mobile_nas.cost.latency.bundle import (
    ANCHOR_ID,
    extract_bundle,
    import_results,
    make_bundle,
    read_manifest,
)
from mobile_nas.cost.latency.export import export_layer_onnx
from mobile_nas.cost.latency.runner import sha256_bytes
from mobile_nas.cost.latency.sentinel import sentinel_onnx

from .conftest import SMALL_VARIANTS


@pytest.fixture(scope="module")
def bundle_and_results(tmp_path_factory, fmnist, small_arch, small_variants):
    """A real bundle of the small arch's layers and five networks made of them (three to
    calibrate on, two to check), run by its own run_lut.py in a subprocess."""
    tmp = tmp_path_factory.mktemp("bundle")
    zpath = tmp / "bundle.zip"
    keys = sorted(set(fmnist.layers(small_arch)))
    make_bundle(fmnist, keys, zpath, archs=small_variants[:3], held_out=small_variants[3:5],
                rounds=4, clock="cpu", seed=11, progress=False)
    folder = extract_bundle(zpath, tmp / "unpacked")
    results = tmp / "results.json"
    proc = subprocess.run(
        [sys.executable, "-I", str(folder / "run_lut.py"), str(zpath), "--out", str(results),
         "--quiet"], cwd=tmp, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return zpath, results


def test_manifest_lists_hashed_models(bundle_and_results, fmnist, small_arch):
    zpath, _ = bundle_and_results
    manifest, _ = read_manifest(zpath)
    keys = sorted(set(fmnist.layers(small_arch)))
    layer_ids = [m["id"] for m in manifest["models"] if m["kind"] == "layer"]
    assert layer_ids == [k.id for k in keys]
    archs = [m for m in manifest["models"] if m["kind"] == "arch"]
    assert [m["id"] for m in archs] == ["arch:" + a for a in SMALL_VARIANTS[:5]]
    assert [m["role"] for m in archs] == ["fit"] * 3 + ["held_out"] * 2
    assert manifest["protocol"]["arch_clock"] == "wall" and manifest["calibration_seed"] == 11
    assert manifest["protocol"]["arch_repeats"] == 3  # as lut build times calibration nets
    with zipfile.ZipFile(zpath) as zf:
        names = set(zf.namelist())
        assert {"manifest.json", "run_lut.py", "README.md"} <= names
        for m in manifest["models"]:
            assert sha256_bytes(zf.read(m["file"])) == m["sha256"]
        # the same single-layer export path as lut build
        first = manifest["models"][0]
        assert zf.read(first["file"]) == export_layer_onnx(keys[0])
        assert "onnxruntime_perf_test" in zf.read("README.md").decode()


def test_runner_needs_only_numpy_and_onnxruntime(bundle_and_results):
    zpath, _ = bundle_and_results
    with zipfile.ZipFile(zpath) as zf:
        tree = ast.parse(zf.read("run_lut.py").decode())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"numpy", "onnxruntime"}


def test_round_trip_agrees_with_direct_build(bundle_and_results, small_table_path, small_arch):
    zpath, results = bundle_and_results
    imported = import_results(results, bundle=zpath)
    direct = LatencyTable.load(small_table_path)
    assert set(imported.entries) == set(direct.entries)
    # the table holds exactly what the device measured (no real timings are compared)
    measured = json.loads(results.read_text())["entries"]
    for key, entry in imported.entries.items():
        assert entry.median_ms == measured[key]["median_ms"], key
        assert entry.n == measured[key]["n"], key
    md = imported.metadata
    assert md["source"] == "mobile-nas lut import" and md["onnxruntime"] and md["cpu"]
    assert md["clock"] == "cpu" and md["threads"] == 1 and md["opset"] == 17
    # layers timed with the bundle's clock, whole networks with the wall clock
    assert {e["clock"] for k, e in measured.items() if k.startswith("arch:")} == {"wall"}
    assert {e["clock"] for k, e in measured.items()
            if not k.startswith("arch:") and k != ANCHOR_ID} == {"cpu"}
    # the anchor ran in every chunk: each entry is a fraction of the anchor of its chunk
    assert all(e["anchor_ms"] > 0 for k, e in measured.items() if k != ANCHOR_ID)
    assert measured[ANCHOR_ID]["sha256"] == sha256_bytes(sentinel_onnx())
    for key, entry in imported.entries.items():
        assert entry.anchor_fraction == measured[key]["median_ms"] / measured[key]["anchor_ms"]
    # whole networks: three separate passes, the entry at the median fraction of the anchor
    for a in SMALL_VARIANTS[:5]:
        e = measured["arch:" + a]
        assert len(e["repeat_fractions"]) == 3
        assert e["median_ms"] / e["anchor_ms"] == pytest.approx(
            statistics.median(e["repeat_fractions"]))
    # three bundled networks calibrated the table, two others checked it, each network's
    # time a fraction of its chunk's anchor, in ms at the anchors' median
    anchor_ms = statistics.median(measured["arch:" + a]["anchor_ms"] for a in SMALL_VARIANTS[:5])

    def in_ms(a):
        e = measured["arch:" + a]
        return e["median_ms"] / e["anchor_ms"] * anchor_ms

    cal = imported.calibration
    assert cal.archs == tuple(SMALL_VARIANTS[:3]) and cal.seed == 11
    assert cal.measured_ms == pytest.approx([in_ms(a) for a in SMALL_VARIANTS[:3]])
    assert cal.held_out.archs == tuple(SMALL_VARIANTS[3:5]) and cal.target == WALL_MEDIAN
    assert cal.held_out.measured_ms == pytest.approx([in_ms(a) for a in SMALL_VARIANTS[3:5]])
    assert imported.predicts == "wall-clock median"


def test_results_of_an_older_bundle_import_uncalibrated(bundle_and_results, tmp_path):
    """Networks without roles (bundles before held-out checks) cannot check a calibration:
    the table is imported without one and says why."""
    from mobile_nas.cost.latency.bundle import manifest_bytes

    _, results = bundle_and_results
    data = json.loads(results.read_text())
    for m in data["manifest"]["models"]:
        m.pop("role", None)
    del data["manifest"]["protocol"]["arch_clock"]
    data["manifest_sha256"] = sha256_bytes(manifest_bytes(data["manifest"]))
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    table = import_results(path)
    assert table.calibration is None
    assert "5 networks to fit and 0 held out" in table.metadata["calibration_skipped"]


def _tampered(results, tmp_path, edit):
    data = json.loads(results.read_text())
    edit(data)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(data))
    return path


def _first(data):
    return next(iter(data["entries"]))


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["entries"][_first(d)].update(sha256="0" * 64), "SHA-256 mismatch"),
    (lambda d: d["entries"].pop(_first(d)), "have no result"),
    (lambda d: d["entries"][_first(d)].update(median_ms=-0.1), "positive"),
    (lambda d: d["entries"][_first(d)].update(median_ms=float("inf")), "finite"),
    (lambda d: d["entries"].update({"stem:extra": {}}), "not in the bundle manifest"),
    (lambda d: d["manifest"].update(space="other"), "manifest_sha256"),
    (lambda d: d.update(schema_version=7), "schema_version 7"),
    (lambda d: d["entries"][_first(d)].pop("anchor_ms"), "has no anchor timing"),
])
def test_import_refuses_bad_results(bundle_and_results, tmp_path, edit, match):
    zpath, results = bundle_and_results
    with pytest.raises(BundleError, match=match):
        import_results(_tampered(results, tmp_path, edit), bundle=zpath)


def test_import_refuses_results_of_another_bundle(bundle_and_results, tmp_path, fmnist):
    _, results = bundle_and_results
    other = tmp_path / "other.zip"
    make_bundle(fmnist, [fmnist.enumerate_layers()[0]], other, progress=False)
    with pytest.raises(BundleError, match="another bundle"):
        import_results(results, bundle=other)


def test_zip_entries_escaping_are_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("manifest.json", "{}")
        zf.writestr("../escaped.txt", "gotcha")
    with pytest.raises(BundleError, match="escape"):
        extract_bundle(evil, tmp_path / "dest")
    with pytest.raises(BundleError, match="escape"):
        read_manifest(evil)
    assert not (tmp_path / "escaped.txt").exists()


def test_runner_refuses_escaping_entries_itself(tmp_path):
    from mobile_nas.cost.latency.runner import RunnerError, safe_extract

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("/abs.txt", "x")
        zf.writestr("a/../../up.txt", "x")
    with pytest.raises(RunnerError, match="escape"):
        safe_extract(evil, tmp_path / "dest")
    assert not (tmp_path / "up.txt").exists()


def test_runner_entry_of_several_passes_is_the_median_fraction():
    from mobile_nas.cost.latency.runner import _entry

    # a network at 0.5, 0.6 and 0.55 of the anchor in three passes whose speed drifted
    anchors = [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.5, 1.5, 1.5]]
    passes = [[0.5] * 3, [1.2] * 3, [0.825] * 3]
    e = _entry(passes, anchors, layer=False, statistic="median")
    assert e["anchor_ms"] == 1.5 and e["median_ms"] == pytest.approx(0.55 * 1.5)
    assert e["repeat_fractions"] == pytest.approx([0.5, 0.6, 0.55])
    assert e["n"] == 9
    # one pass: its own summary, the anchor's statistic of the protocol for layers
    one = _entry([[0.2, 0.3, 0.4]], [[1.0, 2.0, 3.0]], layer=True, statistic="min")
    assert one["median_ms"] == pytest.approx(0.3) and one["anchor_ms"] == 1.0
    assert "repeat_fractions" not in one
    # several passes without an anchor (an older bundle): the median of the passes' medians
    bare = _entry([[1.0], [3.0], [2.0]], [], layer=False, statistic="median")
    assert bare["median_ms"] == 2.0 and "anchor_ms" not in bare


def test_runner_retimes_a_chunk_whose_anchor_strays():
    from mobile_nas.cost.latency.runner import MAX_RETIMES, _AnchorWatch

    def fake(anchors):
        calls = []

        def timed(seed):
            calls.append(seed)
            return {"layer": [float(seed)]}, [anchors[len(calls) - 1]] * 3
        return timed, calls

    watch = _AnchorWatch("median_ms")
    timed, calls = fake([1.0, 1.015, 0.985, 1.0, 1.05])  # the first chunk: the baseline
    watch.chunk("first", timed)
    assert calls == [0, 1, 2, 3, 4] and watch.baseline == 1.0
    # twice the largest deviation (1.5%) once the farthest (5%) is set aside
    assert watch.floor == pytest.approx(3.0)
    timed, calls = fake([1.3, 1.01])  # disturbed, then fine: the second pass is kept
    times, _ = watch.chunk("second", timed)
    assert calls == [0, 1] and times == {"layer": [1.0]}
    timed, calls = fake([1.0])  # within the floor: timed once
    watch.chunk("third", timed)
    assert calls == [0]
    timed, calls = fake([1.3, 1.5, 1.2])  # never settles: the closest of 1 + MAX_RETIMES
    times, _ = watch.chunk("fourth", timed)
    assert len(calls) == 1 + MAX_RETIMES and times == {"layer": [2.0]}
    events = watch.to_json()["retimed"]
    assert [(e["first_id"], e["kept"], e["resolved"]) for e in events] == [
        ("second", 1, True), ("fourth", 2, False)]
