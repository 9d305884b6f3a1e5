"""``mobile-nas lut``: build, calibrate, bundle, import and check latency lookup tables.

One module per subcommand, each with its own ``register(lut)``; helpers that several share
are in :mod:`._shared`.
"""

from __future__ import annotations

import argparse

from mobile_nas.commands.lut import build, bundle, calibrate, check, import_, info, merge


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lut", help="latency lookup tables: build, calibrate, merge, bundle, import, check",
        description="Per-layer latency lookup tables. Each layer key of a space is exported to "
                    "ONNX (opset 17) and timed with onnxruntime; the table predicts network "
                    "latency. See latency_tables/README.md.")
    lut = p.add_subparsers(dest="lut_command", metavar="SUBCOMMAND", required=True)
    for module in (build, calibrate, merge, bundle, import_, check, info):
        module.register(lut)
