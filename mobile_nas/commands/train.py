"""``mobile-nas train ARCH``: stand-alone training of one architecture into ``model.pt``."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import (
    add_json_arg,
    non_negative_int,
    positive_float,
    positive_int,
    print_json,
)
from mobile_nas.commands._options import (
    add_device_args,
    add_size_args,
    add_val_size_arg,
    size_knobs,
)
from mobile_nas.space import load_arch_or_run
from mobile_nas.train.data import load_dataset
from mobile_nas.train.distributed import distributed
from mobile_nas.train.trainer import check_fits_dataset, train_architecture


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train one architecture and write a model checkpoint",
        description="Train ARCH (an arch string, a reference name, a JSON file such as "
                    "RUN_DIR/best.json, or a RUN_DIR holding best.json) from scratch: SGD "
                    "(Nesterov) or AdamW, warm-up + cosine schedule, label smoothing 0.1, "
                    "shift/flip augmentation, validation each epoch, final test accuracy. "
                    "The checkpoint loads with torch.load(weights_only=True). "
                    "--cells/--filters/--input/--channels/--classes train ARCH's cells "
                    "restacked at that size (cell spaces; as 'mobile-nas transfer'). "
                    "Under torchrun (torchrun --nproc_per_node N -m mobile_nas train ...) it "
                    "trains with DistributedDataParallel (gloo on CPUs, NCCL on GPUs): "
                    "--batch-size is the global batch, split over the N processes, at the "
                    "same --lr; rank 0 writes the files. "
                    "Example: mobile-nas train runs/rl/best.json --dataset fashion-mnist "
                    "--epochs 10 --out model.pt",
    )
    p.add_argument("arch", metavar="ARCH", help="arch string, reference name, JSON file or "
                                                "RUN_DIR with best.json")
    p.add_argument("--space", "-s", metavar="S", help="search space (optional for JSON files)")
    add_size_args(p)
    p.add_argument("--dataset", "-d", default="fashion-mnist",
                   help="fashion-mnist (default), cifar10, synthetic or folder:PATH (an "
                        "ImageFolder with train/ and test/, streamed from disk at the "
                        "space's input size)")
    p.add_argument("--data-dir", help="folder with the dataset files")
    add_val_size_arg(p)
    p.add_argument("--workers", type=non_negative_int, metavar="N",
                   help="DataLoader workers decoding a folder dataset (default: up to 4, "
                        "one per core; 0 decodes in the training process)")
    p.add_argument("--epochs", "-e", type=positive_int, required=True)
    p.add_argument("--out", "-o", required=True, help="model checkpoint to write (model.pt)")
    p.add_argument("--resume", action="store_true",
                   help="continue from <out>.state, written after every epoch (under "
                        "torchrun: rank 0's; restart the whole job)")
    p.add_argument("--subset", type=positive_int, metavar="N",
                   help="train on a seeded subset of N training images")
    p.add_argument("--batch-size", type=positive_int, default=128,
                   help="images per optimizer step over all processes (default 128)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--lr", type=positive_float, help="peak learning rate (sgd 0.1, adamw 2e-3)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's)")
    add_device_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_arg(p)
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    arch = size_knobs(args).transfer(load_arch_or_run(args.arch, args.space))
    with distributed(args.device) as dist:
        dataset = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed,
                               val_size=args.val_size,
                               image_shape=arch.search_space.input_shape)
        check_fits_dataset(arch, dataset)
        dist.per_process_batch(args.batch_size)
        ckpt = train_architecture(
            arch, dataset, out=args.out, epochs=args.epochs, resume=args.resume,
            progress=not args.no_progress, batch_size=args.batch_size,
            optimizer=args.optimizer, lr=args.lr, label_smoothing=args.label_smoothing,
            train_subset=args.subset, seed=args.seed, device=dist.device, amp=args.amp,
            distributed=dist if dist.enabled else None, workers=args.workers)
    if not dist.is_main:
        return 0
    m = ckpt.metrics
    record = {"out": args.out, "arch": ckpt.arch, "space": ckpt.space,
              "dataset": dataset.name, "epochs": args.epochs,
              "train_images": m["train_images"], "val_images": len(dataset.val),
              "val_accuracy": m["val_accuracy"],
              "test_accuracy": m["test_accuracy"], "train_seconds": m["seconds"],
              "device": m.get("device"), "precision": m.get("precision"),
              "world_size": m["world_size"], "backend": m["backend"],
              "global_batch": m["global_batch"], "optimizer_steps": m["optimizer_steps"],
              "resumed_from_epoch": m["resumed_from_epoch"]}
    if args.json:
        print_json(record)
        return 0
    for h in m["history"]:
        print(f"epoch {h['epoch']:>3}  loss {h['train_loss']:.4f}  train {h['train_accuracy']:.4f}"
              f"  val {h['val_accuracy']:.4f}  {h['seconds']:.1f}s")
    print(f"arch           {ckpt.arch}")
    print(f"device         {m.get('device')} ({m.get('precision')})")
    print(f"processes      {m['world_size']} ({m['backend']}), global batch "
          f"{m['global_batch']} ({m['global_batch'] // m['world_size']} per process), "
          f"{m['optimizer_steps']} optimizer steps")
    print(f"val accuracy   {m['val_accuracy']:.4f}")
    print(f"test accuracy  {m['test_accuracy']:.4f} ({m['test_images']} images)")
    print(f"wrote          {args.out}")
    return 0
