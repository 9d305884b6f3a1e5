"""``mobile-nas transfer ARCH``: a searched cell restacked in a larger network, and its costs."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, human, positive_int, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transfer", help="restack a searched cell at another size (N cells, F filters, input)",
        description="Take the cells of ARCH (found on a small proxy) into a network with N "
                    "cells per stack, F initial filters and another input size, and report "
                    "the MACs, params and latency of both. The scaled space is named "
                    "<space>@n<N>-f<F>-<C>x<H>x<W>-k<classes>; pass that name as --space to "
                    "train, export, cost or 'lut build' the transferred network. Example: "
                    "mobile-nas transfer ARCH --space nasnet --cells 4 --filters 32 "
                    "--input 224 --channels 3 --classes 1000",
    )
    p.add_argument("arch", metavar="ARCH", help="arch string or JSON file of the cell space")
    p.add_argument("--space", "-s", metavar="S", help="the cell space ARCH comes from "
                   "(nasnet, nb201 or a scaled name; optional for JSON files)")
    add_size_args(p)
    p.add_argument("--table", "-t", metavar="T.json",
                   help="latency table of the scaled space: adds its predicted latency_ms")
    p.add_argument("--source-table", metavar="T.json",
                   help="latency table of the source space: adds its predicted latency_ms")
    p.add_argument("--measure", action="store_true",
                   help="export both networks to ONNX and time them with onnxruntime "
                        "(measured_ms, median of 100 runs)")
    p.add_argument("--out", metavar="FILE.json",
                   help="write the transferred architecture as JSON (for train/export/cost)")
    add_json_arg(p)
    p.set_defaults(handler=_transfer)


SIZE_KNOBS = ("cells", "filters", "input", "channels", "classes")


def add_size_args(p: argparse.ArgumentParser) -> None:
    """--cells/--filters/--input/--channels/--classes: the size knobs of a cell space (shared
    by transfer, train and export)."""
    p.add_argument("--cells", "-N", type=positive_int, help="cells per stack (default: keep)")
    p.add_argument("--filters", "-F", type=positive_int,
                   help="initial filters (default: keep)")
    p.add_argument("--input", type=positive_int, metavar="PX",
                   help="square input size in pixels (default: keep)")
    p.add_argument("--channels", type=positive_int, help="input channels (default: keep)")
    p.add_argument("--classes", type=positive_int, help="output classes (default: keep)")


def size_knobs_given(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) is not None for k in SIZE_KNOBS)


def scaled_from_args(space, args: argparse.Namespace):
    """``space`` resized by the size knobs of ``args``; a knob left out keeps ``space``'s
    value (also when ``space`` is itself scaled). Raises SpaceError for spaces without size
    knobs."""
    from mobile_nas.space.scaled import scaled_space

    if not space.supports_scaling:
        return scaled_space(space)  # the one-line SpaceError: no size knobs
    c, h, w = space.input_shape
    pick = lambda given, kept: kept if given is None else given  # noqa: E731
    shape = (pick(args.channels, c), pick(args.input, h), pick(args.input, w))
    return scaled_space(space, cells=pick(args.cells, space.cells),
                        filters=pick(args.filters, space.filters),
                        num_classes=pick(args.classes, space.num_classes), input_shape=shape)


def transfer_from_args(arch, args: argparse.Namespace):
    """``arch`` restacked at the size the knobs of ``args`` give (``arch`` itself when no knob
    is given)."""
    from mobile_nas.space.scaled import transfer_arch

    if not size_knobs_given(args):
        return arch
    return transfer_arch(arch, scaled_from_args(arch.search_space, args))


def transfer_record(args: argparse.Namespace) -> dict:
    """Source and target costs of the transferred architecture (what the command prints)."""
    from mobile_nas.commands.cost import canonical_space, cost_record
    from mobile_nas.space import load_arch
    from mobile_nas.space.scaled import transfer_arch

    arch = load_arch(args.arch, canonical_space(args.space))
    target = transfer_arch(arch, scaled_from_args(arch.search_space, args))
    records = {}
    for role, a, table in (("source", arch, args.source_table), ("target", target, args.table)):
        ns = argparse.Namespace(arch=a.to_string(), space=a.space, table=table,
                                measure=args.measure)
        rec = cost_record(ns)
        rec.pop("arch")
        sp = a.search_space
        rec.update(cells=sp.cells, filters=sp.filters, input_shape=list(sp.input_shape),
                   num_classes=sp.num_classes)
        records[role] = rec
    ratio = {"macs": records["target"]["macs"] / records["source"]["macs"],
             "params": records["target"]["params"] / records["source"]["params"]}
    for key in ("latency_ms", "measured_ms"):
        if key in records["source"] and key in records["target"]:
            ratio[key] = records["target"][key] / records["source"][key]
    return {"arch": arch.to_string(), "source": records["source"],
            "target": records["target"], "ratio": {k: round(v, 3) for k, v in ratio.items()}}


def _transfer(args: argparse.Namespace) -> int:
    record = transfer_record(args)
    if args.out:
        from mobile_nas.atomic import atomic_write_json
        from mobile_nas.errors import MobileNasError

        data = {"schema_version": 1, "space": record["target"]["space"], "arch": record["arch"],
                "macs": record["target"]["macs"], "params": record["target"]["params"]}
        try:
            atomic_write_json(args.out, data)
        except OSError as exc:
            raise MobileNasError(f"cannot write {args.out!r}: {exc.strerror or exc}") from None
    if args.json:
        print_json(record)
        return 0
    print(f"arch  {record['arch']}")
    for role in ("source", "target"):
        r = record[role]
        line = (f"{role:<7} {r['space']:<34} N={r['cells']} F={r['filters']} "
                f"macs={human(r['macs'])} params={human(r['params'])}")
        for key in ("latency_ms", "measured_ms"):
            if key in r:
                line += f" {key}={r[key]:.3f}"
        print(line)
    print("ratio   " + " ".join(f"{k}={v:g}x" for k, v in record["ratio"].items()))
    if not {"latency_ms", "measured_ms"} & set(record["target"]):
        t = record["target"]
        print(f"latency: add --measure, or --table T.json of {t['space']} (build one with "
              f"'mobile-nas lut build --space {t['space']} --arch ARCH --out T.json')")
    if args.out:
        print(f"wrote {args.out}")
    return 0
