"""The ``mobile-nas`` command. Thin: parses, calls library functions, prints.

Each subcommand lives in ``mobile_nas/commands/<name>.py`` and exposes
``register(subparsers)``; modules are discovered, so adding a command touches no other file.
Errors: :class:`~mobile_nas.errors.MobileNasError` (bad input) prints one line on stderr and
exits 2 (:func:`error_line`: a :class:`~mobile_nas.errors.SettingError` names the flag of
its parameter, :data:`FLAGS`); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

import mobile_nas.commands as pkg
from mobile_nas import __version__
from mobile_nas.cost.latency.errors import LatencyTargetError
from mobile_nas.errors import MobileNasError, SettingError

#: Order in ``--help``; commands not listed follow alphabetically.
_ORDER = ("space", "cost", "lut", "search", "train", "export", "bench", "report", "transfer",
          "demo")


#: The flag of each library parameter whose flag is not ``--`` and its name with dashes
#: (``latency_target`` → ``--latency-target``).
FLAGS = {"out_dir": "--out", "input_size": "--input", "num_classes": "--classes",
         "include": "--arch"}


def flag(parameter: str) -> str:
    """The command-line flag of a library parameter."""
    return FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def error_line(exc: MobileNasError) -> str:
    """The one line the CLI prints for ``exc``: its message, a parameter named by its flag."""
    if isinstance(exc, SettingError):
        return exc.worded(flag)
    if isinstance(exc, LatencyTargetError):
        return exc.worded(flag(exc.setting))
    return str(exc)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit code 2), as for all bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mobile-nas",
        description="Multi-objective, mobile-oriented neural architecture search: sample "
                    "architectures, cost them (MACs, latency tables), search under latency "
                    "and MAC targets, train, export verified ONNX and benchmark it.",
        epilog="Run 'mobile-nas COMMAND --help' for each command. Bad input exits with code 2.",
    )
    parser.add_argument("--version", action="version", version=f"mobile-nas {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    for name in names:
        importlib.import_module(f"mobile_nas.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except MobileNasError as exc:
        if args.debug:
            raise
        print(f"mobile-nas: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mobile-nas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
