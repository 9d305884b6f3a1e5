"""Table-driven bad input across the CLI: every case is one clear line on stderr, exit code 2,
no traceback, and nothing written anywhere (an existing output file keeps its bytes)."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from mobile_nas.space import get_space
from tests.reliability.record import record

REPO = Path(__file__).resolve().parents[2]
ARCH = "ds_k3_n1_c16_relu|mb3_k3_n1_c24_relu|mb3_k3_n1_c40_hswish|mb3_k3_n1_c64_hswish_se"
OTHER = "mb6_k5_n2_c24_relu|mb6_k3_n2_c32_relu|ds_k3_n1_c48_relu|mb6_k3_n2_c96_relu"
MARKER = "pwned.txt"


class _RunsCode:
    """Unpickling this object would create MARKER: a checkpoint must never be trusted."""

    def __reduce__(self):
        return (open, (MARKER, "w"))


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path, dict], list[str]]  # (work dir, fixtures) -> CLI args
    fragment: str


# -- artefacts ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> dict:
    from mobile_nas.cost.latency.bundle import make_bundle, perf_text_to_results
    from mobile_nas.models import build_model
    from mobile_nas.train.checkpoint import make_checkpoint, save_checkpoint
    from mobile_nas.train.data import load_dataset

    root = tmp_path_factory.mktemp("artefacts")
    space = get_space("fmnist28")
    arch = space.decode(ARCH)
    ckpt = make_checkpoint(build_model(arch), arch, load_dataset("synthetic"),
                           metrics={"test_accuracy": 0.5}, recipe={})
    save_checkpoint(ckpt, root / "model.pt")
    keys = sorted(set(space.layers(arch)))[:2]
    make_bundle(space, keys, root / "bundle.zip", rounds=1, progress=False)
    with zipfile.ZipFile(root / "bundle.zip") as zf:
        files = [n for n in zf.namelist() if n.endswith(".onnx")]
    (root / "perf.txt").write_text("".join(f"{f} 0.05\n" for f in files))
    results = perf_text_to_results(root / "perf.txt", root / "bundle.zip", device="test")
    return {"root": root, "ckpt_payload": torch.load(root / "model.pt", weights_only=True),
            "results": results, "bundle": root / "bundle.zip",
            "table": json.loads((REPO / "latency_tables" / "fmnist28.json").read_text())}


def _ckpt(work: Path, fx: dict, **changes) -> str:
    payload = {**fx["ckpt_payload"], **changes}
    torch.save(payload, work / "model.pt")
    return "model.pt"


def _results(work: Path, fx: dict, mutate: Callable[[dict], None]) -> list[str]:
    data = json.loads(json.dumps(fx["results"]))
    mutate(data)
    (work / "r.json").write_text(json.dumps(data))  # json.dumps writes NaN/Infinity tokens
    return ["lut", "import", "r.json", "--out", "t.json"]


def _first_entry(data: dict) -> dict:
    return next(iter(data["entries"].values()))


def _zip(work: Path, fx: dict, add: Callable[[zipfile.ZipFile], None]) -> list[str]:
    with zipfile.ZipFile(fx["bundle"]) as src, zipfile.ZipFile(work / "evil.zip", "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        add(dst)
    (work / "r.json").write_text(json.dumps(fx["results"]))
    return ["lut", "import", "r.json", "--bundle", "evil.zip", "--out", "t.json"]


def _symlink(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, "/etc/passwd")


def _bomb(work: Path, fx: dict) -> list[str]:
    with zipfile.ZipFile(work / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b" " * (300 * 2**20))  # 300 MiB of blanks, ~300 KiB
    (work / "r.json").write_text(json.dumps(fx["results"]))
    return ["lut", "import", "r.json", "--bundle", "bomb.zip", "--out", "t.json"]


def _table(work: Path, text: str) -> list[str]:
    (work / "t.json").write_text(text)
    return ["cost", ARCH, "--space", "fmnist28", "--table", "t.json"]


def _garbage(work: Path, name: str, data: bytes) -> str:
    (work / name).write_bytes(data)
    return name


CASES = [
    Case("arch string fuzz", lambda w, f: ["cost", ARCH.replace("k3", "k3\x00"), "--space",
                                           "fmnist28"], "token"),
    Case("arch json corrupt", lambda w, f: ["cost", _garbage(w, "a.json", b'{"arch": ')],
         "cannot read architecture JSON"),
    Case("table corrupt", lambda w, f: _table(w, "{not json"), "t.json"),
    Case("table truncated",
         lambda w, f: _table(w, json.dumps(f["table"])[: len(json.dumps(f["table"])) // 2]),
         "t.json"),
    Case("table wrong schema",
         lambda w, f: _table(w, json.dumps({**f["table"], "schema_version": 999})),
         "schema_version"),
    Case("table negative time", lambda w, f: _table(w, json.dumps(
        {**f["table"], "entries": {k: {**v, "median_ms": -1.0}
                                   for k, v in f["table"]["entries"].items()}})), "t.json"),
    Case("results NaN", lambda w, f: _results(w, f, lambda d: _first_entry(d).update(
        median_ms=float("nan"))), "r.json"),
    Case("results inf", lambda w, f: _results(w, f, lambda d: _first_entry(d).update(
        median_ms=float("inf"))), "r.json"),
    Case("results negative", lambda w, f: _results(w, f, lambda d: _first_entry(d).update(
        median_ms=-0.5)), "r.json"),
    Case("results missing key", lambda w, f: _results(w, f, lambda d: d["entries"].pop(
        next(iter(d["entries"])))), "no result"),
    Case("results wrong hash", lambda w, f: _results(w, f, lambda d: _first_entry(d).update(
        sha256="0" * 64)), "SHA-256"),
    Case("results wrong schema", lambda w, f: _results(w, f, lambda d: d.update(
        schema_version=42)), "schema_version"),
    Case("zip ../ entry", lambda w, f: _zip(w, f, lambda z: z.writestr("../escape.txt", "x")),
         "escape"),
    Case("zip absolute path", lambda w, f: _zip(w, f, lambda z: z.writestr("/tmp/abs.txt", "x")),
         "escape"),
    Case("zip symlink", lambda w, f: _zip(w, f, _symlink), "link"),
    Case("zip bomb", _bomb, "limit"),
    Case("bench non-onnx", lambda w, f: ["bench", _garbage(w, "m.onnx", b"not a model")],
         "m.onnx"),
    Case("bench missing", lambda w, f: ["bench", "missing.onnx"], "missing.onnx"),
    Case("export non-checkpoint", lambda w, f: ["export", _garbage(w, "m.pt", os.urandom(512)),
                                                "--out", "model.onnx"], "m.pt"),
    Case("export onnx given as checkpoint",
         lambda w, f: ["export", _garbage(w, "m.onnx", b"\x08\x07"), "--out", "model.onnx"],
         "m.onnx"),
    Case("export truncated checkpoint", lambda w, f: [
        "export", _garbage(w, "t.pt", (f["root"] / "model.pt").read_bytes()[:4000]),
        "--out", "model.onnx"], "t.pt"),
    Case("export code-running checkpoint", lambda w, f: [
        "export", _ckpt(w, f, metrics={"evil": _RunsCode()}), "--out", "model.onnx"],
        "run code"),
    Case("export arch not matching weights", lambda w, f: [
        "export", _ckpt(w, f, arch=OTHER), "--out", "model.onnx"], "do not match architecture"),
    Case("export checkpoint of another space", lambda w, f: [
        "export", _ckpt(w, f, space="mobile224"), "--out", "model.onnx"], "does not fit space"),
    Case("export to a missing folder", lambda w, f: [
        "export", _ckpt(w, f), "--out", "nowhere/model.onnx"], "nowhere"),
    Case("train arch of another space", lambda w, f: [
        "train", "mnasnet1_0", "--space", "fmnist28", "--dataset", "synthetic", "--epochs", "1",
        "--out", "model.onnx"], "mnasnet1_0"),
    Case("search target <= 0", lambda w, f: [
        "search", "--space", "fmnist28", "--latency-target-ms", "0", "--trials", "2",
        "--out", "run"], "0"),
    Case("search unknown strategy", lambda w, f: [
        "search", "--space", "fmnist28", "--strategy", "hillclimb", "--latency-target-ms", "1",
        "--trials", "2", "--out", "run"], "hillclimb"),
]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() or p.is_symlink()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, artefacts, tmp_path, monkeypatch,
                                                         run_cli):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "model.onnx").write_bytes(b"previous export")  # an earlier result must survive
    args = case.setup(work, artefacts)
    before = _tree(tmp_path)
    code, out, err = run_cli(*args)
    record("bad_input", case=case.name, exit_code=code, stderr=err.strip(),
           files_changed=_tree(tmp_path) != before)
    assert code == 2, (case.name, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert case.fragment in err, err
    assert not (work / MARKER).exists() and not Path(MARKER).exists()
    assert _tree(tmp_path) == before, f"{case.name} wrote files: {err}"


def test_unreachable_storage_is_refused_before_any_work(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("search", "--space", "fmnist28", "--dataset", "synthetic",
                           "--latency-target-ms", "1", "--trials", "2", "--out", "run",
                           "--storage", "postgresql://nobody@127.0.0.1:1/none")
    record("bad_input", case="search unreachable storage", exit_code=code, stderr=err.strip(),
           files_changed=(tmp_path / "run" / "supernet.pt").exists())
    assert code == 2 and err.count("\n") == 1 and "storage" in err.lower(), err
    assert not (tmp_path / "run" / "supernet.pt").exists()


#: The unmutated counterparts of the cases: the same commands on the fixture's own table,
#: results, bundle and checkpoint. They must succeed, so each case above fails because of its
#: one mutation, not because the artefact it starts from was already unusable.
CONTROLS = [
    ("table", lambda w, f: _table(w, json.dumps(f["table"])), None),
    ("results", lambda w, f: _results(w, f, lambda d: None), "t.json"),
    ("bundle copy", lambda w, f: _zip(w, f, lambda z: None), "t.json"),
    ("checkpoint", lambda w, f: ["export", _ckpt(w, f), "--out", "model.onnx", "--runs", "0"],
     "model.onnx"),
]


@pytest.mark.parametrize("name, setup, written", CONTROLS, ids=[c[0] for c in CONTROLS])
def test_the_unmutated_artefacts_are_accepted(name, setup, written, artefacts, tmp_path,
                                              monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"previous export")
    code, out, err = run_cli(*setup(tmp_path, artefacts))
    assert code == 0, (name, out, err)
    if written is not None:  # the command wrote its result
        assert (tmp_path / written).read_bytes() not in (b"", b"previous export")
