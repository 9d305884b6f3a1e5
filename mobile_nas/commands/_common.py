"""Helpers shared by the subcommands: output, registry names in help, argument types, the
``--space`` and ``--json`` options (the option groups of the commands that search and train
are in :mod:`._options`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


class LazyNames:
    """The names a registry holds, looked up on first use, so that building the parser
    imports no heavy module (strategies and presets import torch). Works as argparse
    ``choices`` and, through :func:`known_names`, in help text."""

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self._names = names
        self._cache: list[str] | None = None

    def _get(self) -> list[str]:
        if self._cache is None:
            self._cache = list(self._names())
        return self._cache

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __contains__(self, name: object) -> bool:
        return name in self._get()

    def __len__(self) -> int:
        return len(self._get())

    def __str__(self) -> str:
        return ", ".join(self._get())


def known_names(action: argparse.Action, names: Callable[[], Iterable[str]]) -> None:
    """Lets the help of ``action`` say ``%(known)s``: ``names()`` comma separated, looked up
    when the help is shown (argparse fills help from the action's attributes)."""
    action.known = LazyNames(names)  # type: ignore[attr-defined]


def add_space_arg(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--space", "-s", required=required, metavar="S",
                        help="search space name (see 'mobile-nas space show --list')")


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def _number(text: str, kind: type[int] | type[float], fits: Callable[[float], bool],
            expected: str) -> Any:
    """``text`` read as ``kind`` when ``fits`` holds for it, else argparse's error."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not fits(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return int(_number(text, int, lambda v: v > 0, "a positive integer"))


def non_negative_int(text: str) -> int:
    """An integer >= 0 (e.g. --verify-top, where 0 turns a step off)."""
    return int(_number(text, int, lambda v: v >= 0, "an integer >= 0"))


def positive_float(text: str) -> float:
    return float(_number(text, float, lambda v: 0 < v < float("inf"), "a positive number"))


def human(n: float) -> str:
    """12_345_678 → '12.35M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"
