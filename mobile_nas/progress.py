"""The one progress bar: tqdm on a terminal, a few whole lines in a log.

On a terminal :func:`progress_bar` is plain tqdm, redrawn in place. When its stream is not a
terminal (``make demo > log.txt``, CI, a pipe), tqdm would write every redraw into the file;
there the bar writes one whole line when it starts, when it crosses each tenth of its total
(or, without a total, never by count), when ``LOG_INTERVAL_S`` seconds have passed since its
last line, and when it closes, so a log grows by about a dozen lines per bar.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from tqdm import tqdm

#: Longest gap between two lines of a bar written to a log (not a terminal), in seconds.
LOG_INTERVAL_S = 30.0
#: Lines a bar with a total writes to a log by count: one per this fraction of the total.
LOG_STEP = 0.1


class LogBar(tqdm):
    """tqdm for a stream that is not a terminal: whole lines, at most one per tenth of the
    total (or per ``LOG_INTERVAL_S``), instead of a carriage-return redraw per update."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._line_t: float | None = None
        self._line_n: float | None = None
        self._line_step: int | None = None
        super().__init__(*args, **kwargs)

    def _step(self) -> int | None:
        return int(self.n / (self.total * LOG_STEP)) if self.total else None

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None:  # tqdm clearing the bar: nothing to clear in a log
            return False
        now = self._time()
        if (self._line_t is not None and self._step() == self._line_step
                and now - self._line_t < LOG_INTERVAL_S):
            return True
        self._write_line(now)
        return True

    def _write_line(self, now: float) -> None:
        self.fp.write(self.__str__() + "\n")
        self.fp.flush()
        self._line_t, self._line_n, self._line_step = now, self.n, self._step()

    def clear(self, nolock: bool = False) -> None:
        """Nothing: lines in a log stay (tqdm clears a terminal bar before ``write``)."""

    def close(self) -> None:
        if not self.disable and self._line_n is not None and self.n != self._line_n:
            self._write_line(self._time())  # the final count
        self.leave = False  # tqdm's own closing redraw would repeat the last line
        super().close()


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None,
                 desc: str | None = None, unit: str = "it", disable: bool = False,
                 leave: bool = True, initial: float = 0, file: IO[str] | None = None,
                 dynamic_ncols: bool = True) -> tqdm:
    """A tqdm progress bar on ``file`` (default stderr): redrawn in place on a terminal, a
    :class:`LogBar` elsewhere. Arguments as tqdm's."""
    stream = file if file is not None else sys.stderr
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # closed or file-like without isatty
        terminal = False
    cls = tqdm if terminal else LogBar
    return cls(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=leave,
               initial=initial, file=stream, dynamic_ncols=dynamic_ncols and terminal)


def write_line(text: str, *, file: IO[str] | None = None) -> None:
    """``text`` as one line on ``file`` (default stderr) without breaking a progress bar
    drawn there (tqdm's ``write``)."""
    tqdm.write(text, file=file if file is not None else sys.stderr)
