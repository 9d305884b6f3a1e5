"""Builds the stand-alone ground truth of a mobile space: architectures trained alone.

Which architectures (fixed by ``--seed``): ``--bins`` equal-count bins of the shipped table's
predicted latency over a pool of 4,000 samples, ``--per-bin`` draws from each, plus the space's
hand-designed references and its smallest and largest networks (mobile spaces; cell spaces
have neither). The first ``--second-seed``
draws of every bin are trained again with seed 1 (the seed-to-seed noise, i.e. the ceiling of
any estimator's rank fidelity).

Recipe (one for all, recorded in the header; the default is one pass over the 55,000-image
training split): the `train` command's SGD + warm-up + cosine schedule, label smoothing and
shift/flip augmentation. Every run is scored on the 5,000-image validation split (the one a
search with --seed 0 validates on) and on the 10,000-image test split (reported, never used
for a choice).

More architectures for the same set: rerun with another ``--seed`` (and ``--second-seed 0``) on
the same OUT: a second stratified draw, recorded in the header's ``more_selections``.

Resumable and parallel: each finished run is appended atomically to OUT.csv; a rerun skips
finished runs; several processes may share one OUT (each claims a run before training it):

    .venv/bin/python benchmarks/build_groundtruth.py --out benchmarks/data/fmnist28_standalone &
    .venv/bin/python benchmarks/build_groundtruth.py --out benchmarks/data/fmnist28_standalone &
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from _shared import run_main
from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, shipped_table_path
from mobile_nas.cost.latency.runner import this_machine
from mobile_nas.errors import MobileNasError
from mobile_nas.space import REFERENCE_ARCHS, get_space
from mobile_nas.train.data import load_dataset
from mobile_nas.train.groundtruth import (
    Recipe,
    append_row,
    done_runs,
    make_header,
    paths_of,
    repredict,
    stratified_archs,
    train_row,
    write_header,
)


def plan(space, predictor, *, bins: int, per_bin: int, second_seed: int, seed: int):
    """[(role, arch, training seed)] in the order they are trained."""
    runs = [(f"reference:{name}", space.decode(REFERENCE_ARCHS.get(name).arch), 0)
            for name in REFERENCE_ARCHS.names() if REFERENCE_ARCHS.get(name).space == space.name]
    runs += [(name, arch, 0) for name, arch in space.extreme_archs().items()]
    drawn = stratified_archs(space, predictor.predict_ms, bins=bins, per_bin=per_bin, seed=seed)
    for k in range(per_bin):  # round k: draw k of every bin, then its second seed
        chunk = drawn[k * bins:(k + 1) * bins]
        runs += [(f"bin{b}", arch, 0) for b, arch in chunk]
        if k < second_seed:
            runs += [(f"bin{b}", arch, 1) for b, arch in chunk]
    seen, unique = set(), []
    for role, arch, s in runs:  # a drawn arch may equal a reference: train it once
        if (arch, s) not in seen:
            seen.add((arch, s))
            unique.append((role, arch, s))
    return unique


def claim_path(claims: Path, arch: str, seed: int) -> Path:
    return claims / f"{hashlib.sha1(f'{arch}#{seed}'.encode()).hexdigest()[:16]}.claim"


def claim(claims: Path, arch: str, seed: int) -> bool:
    """Takes a run for this process (a claim of a dead process is taken over)."""
    claims.mkdir(exist_ok=True)
    path = claim_path(claims, arch, seed)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(path.read_text() or 0)
            os.kill(pid, 0)
            return False  # alive: someone else is training it
        except (ValueError, ProcessLookupError, FileNotFoundError):
            path.unlink(missing_ok=True)
            return claim(claims, arch, seed)
        except PermissionError:
            return False
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="fmnist28")
    p.add_argument("--out", default="benchmarks/data/fmnist28_standalone",
                   help="stem of OUT.json (header) and OUT.csv (rows)")
    p.add_argument("--bins", type=int, default=8)
    p.add_argument("--per-bin", type=int, default=6)
    p.add_argument("--second-seed", type=int, default=2,
                   help="draws per bin also trained with seed 1")
    p.add_argument("--seed", type=int, default=0, help="architecture selection seed")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-images", type=int, help="default: the whole training split")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd (lr 0.1, the train command's default) or adamw (cell spaces)")
    p.add_argument("--lr", type=float, help="peak learning rate (sgd 0.1, adamw 3e-3)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    p.add_argument("--limit", type=int, help="stop after this many runs (chunks)")
    p.add_argument("--list", action="store_true", help="print the plan and exit")
    p.add_argument("--repredict", action="store_true",
                   help="only recompute every row's predicted_ms with the space's shipped "
                        "table (after a table rebuild; nothing is trained) and exit")
    args = p.parse_args(argv)
    return run_main(lambda: repredict_rows(args) if args.repredict else build(args))


def repredict_rows(args) -> int:
    """``--repredict``: the rows' predicted_ms from the shipped table as it is now."""
    import hashlib

    space = get_space(args.space)
    table = shipped_table_path(space.name)
    if table is None:
        raise MobileNasError(f"no shipped latency table for {space.name!r}")
    loaded = LatencyTable.load(table)
    predictor = LatencyPredictor(loaded, table_path=table)
    n = repredict(args.out, lambda a: round(predictor.predict_ms(space.decode(a)), 6),
                  table={"table": f"latency_tables/{table.name}",
                         "sha256": hashlib.sha256(table.read_bytes()).hexdigest(),
                         "table_date": loaded.metadata.get("date"),
                         "recomputed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "statistic": predictor.statistic})
    print(f"recomputed predicted_ms of {n} rows of {args.out} with {table.name}",
          file=sys.stderr)
    return 0


def build(args) -> int:
    torch.set_num_threads(args.threads)
    space = get_space(args.space)
    table = shipped_table_path(space.name)
    if table is None:
        raise MobileNasError(f"no shipped latency table for {space.name!r} to stratify by")
    predictor = LatencyPredictor(LatencyTable.load(table), table_path=table)
    runs = plan(space, predictor, bins=args.bins, per_bin=args.per_bin,
                second_seed=args.second_seed, seed=args.seed)
    if args.list:
        for role, arch, s in runs:
            print(f"{role:32s} seed {s}  {predictor.predict_ms(arch):.3f} ms  {arch}")
        return 0
    lr = args.lr if args.lr is not None else {"sgd": 0.1, "adamw": 3e-3}[args.optimizer]
    recipe = Recipe(epochs=args.epochs, train_images=args.train_images,
                    optimizer=args.optimizer, lr=lr,
                    weight_decay={"sgd": 4e-5, "adamw": 0.05}[args.optimizer])
    header_path, csv_path = paths_of(args.out)
    header_path.parent.mkdir(parents=True, exist_ok=True)
    machine = this_machine()
    write_header(args.out, make_header(
        space, recipe,
        selection={"bins": args.bins, "per_bin": args.per_bin, "seed": args.seed,
                   "pool": 4000, "stratified_by": f"predicted latency ({table.name})",
                   "second_seed_per_bin": args.second_seed,
                   "seeds": [0, 1] if args.second_seed else [0]},
        machine={"cpu": machine.cpu, "cores": machine.cpu_count, "torch": torch.__version__,
                 "torch_threads": args.threads, "python": machine.python,
                 "note": "train_seconds are wall-clock on a shared 2-core VM: indicative"},
        command=f"python benchmarks/build_groundtruth.py {shlex.join(sys.argv[1:])}".strip(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds")))
    dataset = load_dataset(recipe.dataset, seed=recipe.split_seed, val_size=recipe.val_images)
    done = done_runs(args.out)
    todo = [r for r in runs if (r[1].to_string(), r[2]) not in done]
    left = len(todo)
    if args.limit is not None:
        todo = todo[:args.limit]
    print(f"{len(runs) - left} of {len(runs)} runs done; {left} to go"
          f"{f', {len(todo)} in this chunk' if len(todo) < left else ''} -> {csv_path}",
          file=sys.stderr, flush=True)
    from mobile_nas.progress import progress_bar

    claims = csv_path.with_name(f".{csv_path.stem}.claims")
    bar = progress_bar(todo, desc="ground truth", unit="arch")
    for role, arch, s in bar:
        key = arch.to_string()
        if (key, s) in done_runs(args.out) or not claim(claims, key, s):
            continue
        try:
            row = train_row(arch, role=role, seed=s, recipe=recipe, dataset=dataset,
                            predicted_ms=predictor.predict_ms(arch))
            append_row(args.out, row)
        finally:
            claim_path(claims, key, s).unlink(missing_ok=True)
        bar.write(f"{role:28s} seed {s}  val {100 * row.val_accuracy:.2f}%  test "
                  f"{100 * row.test_accuracy:.2f}%  {row.train_seconds:.0f} s  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
