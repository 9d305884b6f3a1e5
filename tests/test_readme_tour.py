"""The command examples of the README and of the tour run as written.

The examples are read from the documents themselves, so a new or changed example is covered
without touching this file:

* every ``mobile-nas ...`` command of the tour (mobile_nas/TOUR.md, its "## A tour" section up
  to the next "## " heading): the lines of its code blocks (indented or fenced; ``$`` prompts,
  ``\\`` continuations and ``# comments`` as a shell reads them, ``[--optional]`` parts left
  out) and the ``mobile-nas ...`` spans of its prose, plus the ``python ...`` lines of the
  same code blocks (the device side of a latency bundle);
* for the fast checks, also every ``mobile-nas`` example elsewhere in TOUR.md and in
  README.md, CONTRIBUTING.md and latency_tables/README.md, and the "Example: mobile-nas ..."
  of every command's ``--help``.

Fast checks (not slow): every example parses with the real command-line parser (a wrong or
missing flag fails here), its command's ``--help`` runs, and the cheap tour examples run in a
temporary folder; where the tour shows their output and it does not depend on timing, the
shown lines (``...`` = anything) must be what the command prints.

Slow check: the whole tour runs in one temporary folder in the tour's order (a search writes RUN,
train reads RUN/best.json, ...). An example that fails because it reads a file a later example
writes (``bench model.onnx`` is mentioned before the export) is run again once the others
have run; it must pass then. The tour's own budgets would take hours, so these
substitutions apply (``SUBSTITUTIONS`` below; each must still match some example, so none goes
stale silently):

* searches: at most 3 trials; the ``quick`` and ``default`` presets are replaced by a tiny one
  (a 4-step supernet, 64 validation images) so a search that trains a supernet takes seconds;
  the shipped pretrained supernet is used as the tour says;
* ``train``: 1 epoch on 256 images, and the larger cell network (``--cells 2``) on the
  synthetic dataset (its training and its export's checks on 10,000 Fashion-MNIST test
  images took 15 minutes on 2 busy cores); then INT8 export allows a drop of 100 points
  instead of 1 (a network trained this little is not what INT8's 1-point check is about;
  that check is tested in tests/export/test_export_command.py);
* ``lut build`` / ``lut bundle`` of the whole fmnist28 space: only the layers of one small
  network (the tour says "about a minute" for the full space), 2 rounds, no calibration
  (which would add the layers of 14 random networks); ``lut build --calibrate 8`` of
  nb201@r28-c1: 3 calibration and 2 held-out networks (the least it takes), 2 rounds;
  ``lut check --n 10``: 2 random networks, 2 rounds;
* ``lut build --out latency_tables/T.json`` (a shipped table's path) writes ``T.json`` in
  the tour's folder, whose ``latency_tables/`` links the repository's;
* placeholders: ``ARCH`` is a NASNet architecture, ``$(hostname)-$$`` a fixed name, the
  PostgreSQL URL an SQLite file (no database server in tests), ``../shared/data/nb201`` the
  repository's sibling folder (skipped where it is absent);
* without Debian's Fashion-MNIST, ``--dataset synthetic`` for the searches and ``train``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
CONTRIBUTING = REPO / "CONTRIBUTING.md"
TABLES_README = REPO / "latency_tables" / "README.md"
TOUR_MD = REPO / "mobile_nas" / "TOUR.md"
NB201_DATA = REPO.parent / "shared" / "data" / "nb201"
NASNET = ("normal:max_pool_3x3~1+sep_conv_7x7~1,sep_conv_3x3~0+sep_conv_3x3~0,identity~0+"
          "conv_1x7_7x1~2,avg_pool_3x3~2+max_pool_3x3~4,avg_pool_3x3~3+conv_1x7_7x1~3|reduce:"
          "identity~0+sep_conv_3x3~1,identity~1+sep_conv_3x3~1,max_pool_3x3~3+sep_conv_5x5~3,"
          "identity~0+avg_pool_3x3~0,sep_conv_7x7~0+dil_conv_3x3~2")
SMALL = "ds_k3_n1_c16_relu|mb3_k3_n1_c24_relu|mb3_k3_n1_c40_hswish|mb3_k3_n1_c64_hswish_se"


# -- reading the examples -------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    source: str  # "mobile_nas/TOUR.md:123"
    text: str  # the command as written, continuations joined
    argv: tuple[str, ...]  # as a shell splits it (comments and [optional] parts dropped)
    output: tuple[str, ...] = ()  # the lines shown after a ``$`` prompt
    inline: bool = False  # a `span` of prose rather than a code block line

    @property
    def id(self) -> str:
        return f"{self.source} {self.text[:70]}"


def _section(lines: list[str], heading: str) -> tuple[int, list[str]]:
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return start, lines[start:end]


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Code blocks as (index of first line, lines without indent): fenced ones and indented
    ones (4 spaces, after a blank line)."""
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append((i + 1, lines[i + 1:j]))
            i = j + 1
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or (
                    not lines[j].strip() and j + 1 < len(lines)
                    and lines[j + 1].startswith("    "))):
                j += 1
            blocks.append((i, [x[4:] for x in lines[i:j]]))
            i = j
        else:
            i += 1
    return blocks


def _argv(text: str) -> tuple[str, ...]:
    return tuple(t for t in shlex.split(text, comments=True)
                 if not (t.startswith("[") and t.endswith("]")))


_COMMAND = re.compile(r"^\$? ?(mobile-nas|python) ")


def _block_examples(name: str, first: int, lines: list[str]) -> list[Example]:
    out: list[Example] = []
    i = 0
    while i < len(lines):
        if not _COMMAND.match(lines[i]):
            i += 1
            continue
        start, text = i, lines[i]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1].rstrip() + " " + lines[i].strip()
        shown: list[str] = []
        if text.startswith("$ "):  # what follows, up to the next command, is its output
            while i + 1 < len(lines) and not _COMMAND.match(lines[i + 1]):
                i += 1
                shown.append(lines[i])
        text = text.removeprefix("$ ")
        out.append(Example(f"{name}:{first + start + 1}", text, _argv(text), tuple(shown)))
        i += 1
    return out


def _inline_examples(name: str, lines: list[str], offset: int) -> list[Example]:
    in_block = {first + k for first, block in _blocks(lines) for k in range(len(block))}
    prose = "\n".join("" if k in in_block else line for k, line in enumerate(lines))
    out = []
    for m in re.finditer(r"`(mobile-nas(?: [^`]*)?)`", prose):
        text = " ".join(m.group(1).split())
        line = offset + prose.count("\n", 0, m.start()) + 1
        out.append(Example(f"{name}:{line}", text, _argv(text), inline=True))
    return out


def examples_of(path: Path, heading: str | None = None) -> list[Example]:
    """The examples of ``path`` (of its section ``heading`` only, if given), by line."""
    name = path.relative_to(REPO).as_posix()
    lines = path.read_text().splitlines()
    offset = 0
    if heading is not None:
        offset, lines = _section(lines, heading)
    found = [e for first, block in _blocks(lines)
             for e in _block_examples(name, offset + first, block)]
    found += _inline_examples(name, lines, offset)
    return sorted(found, key=lambda e: int(e.source.split(":")[1]))


def tour() -> list[Example]:
    return examples_of(TOUR_MD, "## A tour")


def _help_examples() -> list[Example]:
    from mobile_nas.cli import build_parser

    out = []
    for path, p in _commands(build_parser()):
        for text in (p.description or "", p.epilog or ""):
            for m in re.finditer(r"Example: (mobile-nas .+?)(?=\.?$|\. [A-Z(])", text):
                out.append(Example(f"mobile-nas {' '.join(path)} --help", m.group(1),
                                   _argv(m.group(1))))
    return out


def _commands(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def _command_path(argv: tuple[str, ...]) -> list[str]:
    from mobile_nas.cli import build_parser

    path, p = [], build_parser()
    for token in argv[1:]:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or token not in subs[0].choices:
            break
        path.append(token)
        p = subs[0].choices[token]
    return path


TOUR = tour()
MOBILE_NAS = [e for e in TOUR if e.argv[0] == "mobile-nas"]
EVERYWHERE = [e for path in (README, TOUR_MD, CONTRIBUTING, TABLES_README)
              for e in examples_of(path) if e.argv[0] == "mobile-nas"]


def test_the_tour_is_found():
    """A guard for the reader above: the tour's examples are all there."""
    commands = {" ".join(_command_path(e.argv)) for e in MOBILE_NAS}
    assert {"space show", "space sample", "cost", "lut check", "lut build", "lut bundle",
            "lut import", "bench", "search", "train", "export", "report",
            "transfer"} <= commands, commands
    assert len(MOBILE_NAS) >= 20
    assert any(e.argv[:2] == ("python", "bundle/run_lut.py") for e in TOUR)
    assert any(e.inline for e in MOBILE_NAS) and any(e.output for e in MOBILE_NAS)


# -- fast: every example parses, every command's --help runs ---------------------------------
def _parse(argv: tuple[str, ...], capsys) -> str | None:
    """None if the real parser takes ``argv``, else its error line."""
    from mobile_nas.cli import build_parser

    try:
        build_parser().parse_args(list(argv[1:]))
    except SystemExit as exc:
        if exc.code:
            return capsys.readouterr().err.strip()
    return None


def _is_reference(e: Example) -> bool:
    """`mobile-nas search` in prose names a command; it is not an example to run."""
    return e.inline and len(e.argv) == 1 + len(_command_path(e.argv))


@pytest.mark.parametrize("example", [e for e in EVERYWHERE if not _is_reference(e)]
                         + _help_examples(), ids=lambda e: e.id)
def test_every_example_parses(example, capsys):
    error = _parse(example.argv, capsys)
    assert error is None, f"{example.source}: {example.text!r} does not parse: {error}"


@pytest.mark.parametrize("path", sorted({tuple(_command_path(e.argv)) for e in EVERYWHERE}),
                         ids=" ".join)
def test_every_examples_command_has_help(path, run_cli):
    code, out, err = run_cli(*path, "--help")
    assert code == 0, err
    assert out.startswith("usage: mobile-nas " + " ".join(path)), out[:200]


def test_a_wrong_flag_fails_the_parse_check(capsys):
    """The check above can fail: an example the README once had, without --epochs."""
    assert "--epochs" in _parse(_argv("mobile-nas train best.json --cells 2 --filters 12 "
                                      "--out big.pt"), capsys)
    assert "unrecognized" in _parse(_argv("mobile-nas space show --space fmnist28 --lists"),
                                    capsys)


# -- running examples -----------------------------------------------------------------------
def _have_fmnist() -> bool:
    from mobile_nas.train.data import DEBIAN_FASHION_MNIST

    return DEBIAN_FASHION_MNIST.is_dir()


def _set(argv: list[str], flag: str, value: str | None) -> list[str]:
    """``argv`` with ``flag`` set to ``value`` (added if absent; removed if None)."""
    if flag in argv:
        i = argv.index(flag)
        del argv[i:i + 2]
    return argv + ([flag, value] if value is not None else [])


def _cap(flag: str, most: int):
    def change(argv: list[str]) -> list[str]:
        return _set(argv, flag, str(min(int(argv[argv.index(flag) + 1]), most)))
    return change


#: (what an example's text must match, what it does to the argv, why). Each one must match
#: at least one tour example (test_every_substitution_is_used).
SUBSTITUTIONS = [
    (r"^mobile-nas (search|train) ",
     lambda a: a if _have_fmnist() or "table" in a else _set(a, "--dataset", "synthetic"),
     "no Debian Fashion-MNIST here"),
    (r"^mobile-nas search .*--trials", _cap("--trials", 3), "at most 3 trials"),
    (r"^mobile-nas train ", lambda a: _set(_set(a, "--epochs", "1"), "--subset", "256"),
     "1 epoch on 256 images"),
    (r"^mobile-nas train .*--cells", lambda a: _set(a, "--dataset", "synthetic"),
     "a 2-cell NASNet scores 10,000 test images slowly: the synthetic set has 1,000"),
    (r"^mobile-nas lut build --space fmnist28 ",
     lambda a: a + ["--arch", SMALL, "--rounds", "2", "--calibrate", "0"],
     "one network's layers, not the whole space, uncalibrated"),
    (r"^mobile-nas lut bundle --space fmnist28 ",
     lambda a: a + ["--arch", SMALL, "--rounds", "2", "--calibrate", "0"],
     "one network's layers, not the whole space, uncalibrated"),
    (r"^mobile-nas lut build --space nb201@r28-c1 .*--calibrate 8",
     lambda a: _set(a, "--calibrate", "3") + ["--held-out", "2", "--rounds", "2"],
     "the fewest calibration networks lut build takes: 3, and 2 held out"),
    (r"^mobile-nas lut check .*--n 10", lambda a: _set(a, "--n", "2") + ["--rounds", "2"],
     "2 random networks"),
    (r"^mobile-nas lut build .*--out latency_tables/",
     lambda a: _set(a, "--out", Path(a[a.index("--out") + 1]).name),
     "a table the tour writes into latency_tables/ goes beside the tour instead (the "
     "folder links the repository's shipped tables)"),
    (r"^mobile-nas transfer ARCH ", lambda a: [NASNET if t == "ARCH" else t for t in a],
     "ARCH is a placeholder"),
    (r"\$\(hostname\)-\$\$", lambda a: [t.replace("$(hostname)-$$", "host-1") for t in a],
     "shell expansion"),
    (r"--storage postgresql://", lambda a: _set(a, "--storage", "sqlite:///workers.db"),
     "no PostgreSQL server in tests"),
    (r"\.\./shared/data/nb201/",
     lambda a: [t.replace("../shared/data/nb201", str(NB201_DATA)) for t in a],
     "the repository's sibling folder"),
]


def _substituted(e: Example) -> list[str]:
    argv = list(e.argv)
    for pattern, change, _ in SUBSTITUTIONS:
        if re.search(pattern, e.text):
            argv = change(argv)
    return argv


def test_every_substitution_is_used():
    for pattern, _, why in SUBSTITUTIONS:
        assert any(re.search(pattern, e.text) for e in TOUR), f"stale: {pattern} ({why})"


@pytest.fixture
def tiny_presets(monkeypatch):
    """``quick`` and ``default`` as a 4-step supernet scored on 64 images."""
    import mobile_nas.export.deploy as deploy
    from mobile_nas.registry import Registry
    from mobile_nas.search import presets
    from mobile_nas.train.supernet import SupernetTrainConfig

    reg = Registry("preset", presets.StrategyError)
    for name in ("default", "quick"):
        reg.register(name, presets.Preset(
            name, SupernetTrainConfig(steps=4, batch_size=16, warmup_steps=1),
            calib_batches=1, calib_batch_size=16, val_images=64, proxy_epochs=1,
            proxy_train_images=64, family_overrides={f: {**presets.CELL_SUPERNET, "steps": 4}
                                                     for f in ("nasnet", "nb201")}))
    monkeypatch.setattr(presets, "PRESETS", reg)
    monkeypatch.setattr(deploy, "INT8_MAX_DROP", 1.0)


@dataclass
class Ran:
    code: int
    out: str
    err: str
    seconds: float


def _run(argv: list[str], cwd: Path) -> Ran:
    """``mobile-nas`` in-process (so the tiny presets apply), ``python`` as a subprocess, in
    ``cwd``, which links the repository's latency_tables/ (the tour runs in a checkout)."""
    if not (cwd / "latency_tables").exists():
        (cwd / "latency_tables").symlink_to(REPO / "latency_tables")
    t0 = time.perf_counter()
    if argv[0] == "python":
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, capture_output=True,
                              text=True, timeout=600, env={**os.environ, "PYTHONPATH": ""})
        return Ran(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)
    import torch

    from mobile_nas.cli import main

    out, err = io.StringIO(), io.StringIO()
    threads, here = torch.get_num_threads(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv[1:])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(here)
        torch.set_num_threads(threads)
    return Ran(code, out.getvalue(), err.getvalue(), time.perf_counter() - t0)


def _matches(shown: tuple[str, ...], printed: str) -> str | None:
    """None if every shown line (``...`` = anything; spacing ignored) is printed, in order;
    else the first line that is not."""
    lines = [" ".join(x.split()) for x in printed.splitlines()]
    k = 0
    for want in shown:
        want = " ".join(want.split())
        if want in ("", "..."):
            continue
        rx = re.compile(".*".join(map(re.escape, want.split("..."))) + "$")
        while k < len(lines) and not rx.match(lines[k]):
            k += 1
        if k == len(lines):
            return want
        k += 1
    return None


#: tour examples cheap enough for the fast suite with the tour's own values, and whether
#: their shown output is deterministic (no timings) and so checked line by line
CHEAP = {"space show": True, "space sample": True, "transfer": True, "cost": False}


def _cheap(e: Example) -> bool:
    path = " ".join(_command_path(e.argv))
    return path in CHEAP or (path == "search" and "--evaluator table" in e.text)


@pytest.mark.parametrize("example", [e for e in MOBILE_NAS if _cheap(e)], ids=lambda e: e.id)
def test_cheap_examples_run_and_print_what_the_tour_shows(example, tmp_path, monkeypatch):
    if "../shared/data/nb201" in example.text and not NB201_DATA.is_dir():
        pytest.skip(f"{NB201_DATA} is absent")
    ran = _run(_substituted(example), tmp_path)
    assert ran.code == 0, f"{example.source}: {example.text}\n{ran.err[-3000:]}"
    if CHEAP.get(" ".join(_command_path(example.argv))) and example.output:
        missing = _matches(example.output, ran.out)
        assert missing is None, f"{example.source}: the tour shows {missing!r}; printed:\n" \
                                f"{ran.out}"


def test_the_output_check_can_fail():
    assert _matches(("a ... c",), "x\na b c\n") is None
    assert _matches(("a ... c", "x"), "x\na b c\n") == "x"  # order matters
    assert _matches(("10 networks: MAPE 3.22%",), "12 networks: MAPE 218.59%") is not None


@pytest.mark.slow
def test_the_whole_tour_runs_in_order(tmp_path, tiny_presets):
    """Every tour example, in the tour's order, one folder; see the module docstring."""
    if any("../shared/data/nb201" in e.text for e in TOUR) and not NB201_DATA.is_dir():
        pytest.skip(f"{NB201_DATA} is absent")
    t0 = time.perf_counter()
    pending, log = list(TOUR), []
    for _attempt in (1, 2):
        failed = []
        for e in pending:
            ran = _run(_substituted(e), tmp_path)
            log.append(f"{ran.seconds:6.1f}s  exit {ran.code}  {e.source} {e.text[:90]}")
            if ran.code != 0:
                failed.append((e, ran))
        if not failed:
            break
        pending = [e for e, _ in failed]
    else:
        e, ran = failed[0]
        pytest.fail(f"{len(failed)} tour example(s) fail; first {e.source}: {e.text}\n"
                    f"{ran.err[-3000:]}\n" + "\n".join(log))
    print(f"tour: {len(TOUR)} examples in {time.perf_counter() - t0:.0f} s\n" + "\n".join(log))
