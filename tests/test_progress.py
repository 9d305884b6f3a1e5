"""Progress bars written to a log (not a terminal) stay a few whole lines."""

import io
import re
import subprocess
import sys
import time

from mobile_nas.progress import LOG_INTERVAL_S, LogBar, progress_bar
from tests.search.conftest import synthetic_table_json


def _lines(text: str) -> list[str]:
    """What a reader of the log sees as lines: tqdm's redraws end in carriage returns."""
    return [s for s in re.split(r"[\r\n]", text) if s.strip()]


class _FakeClock:
    """Time that moves only when the test says (from now: the bar's first line is now)."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def test_a_log_gets_a_line_per_tenth_not_per_update():
    log = io.StringIO()
    bar = progress_bar(total=5000, desc="work", file=log)
    assert isinstance(bar, LogBar)
    bar.miniters, bar.mininterval = 1, 0  # redraw on every update, as a slow loop would
    for _ in range(5000):
        bar.update(1)
    bar.close()
    lines = _lines(log.getvalue())
    assert "\r" not in log.getvalue()
    assert 10 <= len(lines) <= 12, lines  # the start, each tenth; the end is the last tenth
    assert "0/5000" in lines[0] and "5000/5000" in lines[-1]
    assert len({line.split("|")[0] for line in lines}) == len(lines)  # no line repeated


def test_a_slow_bar_writes_a_line_every_interval_and_its_final_count():
    log = io.StringIO()
    clock = _FakeClock()
    bar = progress_bar(total=1000, desc="slow", file=log)
    bar._time = clock
    bar.miniters, bar.mininterval = 1, 0
    for _ in range(9):  # 9 updates within one tenth: a line every third (past the interval)
        clock.t += LOG_INTERVAL_S * 0.35
        bar.update(1)
    assert len(_lines(log.getvalue())) == 1 + 3
    bar.update(1)  # not a new tenth, not due: no line
    assert len(_lines(log.getvalue())) == 4
    bar.close()  # the count reached is written once at the end
    lines = _lines(log.getvalue())
    assert len(lines) == 5 and "10/1000" in lines[-1]


def test_lines_written_beside_a_bar_are_kept_whole():
    log = io.StringIO()
    bar = progress_bar(total=4, desc="b", file=log, leave=False)
    bar.write("between", file=log)
    bar.update(4)
    bar.close()
    assert _lines(log.getvalue())[1] == "between"
    assert "\r" not in log.getvalue()


def test_a_disabled_bar_writes_nothing():
    log = io.StringIO()
    for _ in progress_bar(range(10), file=log, disable=True):
        pass
    assert log.getvalue() == ""


def test_a_search_piped_to_a_file_writes_few_lines(tmp_path):
    """What ``make demo > log.txt`` does with a search's bar: 25 trials, progress on."""
    import json

    from mobile_nas.space import get_space

    table = tmp_path / "t.json"
    table.write_text(json.dumps(synthetic_table_json(get_space("fmnist28"))))
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        code = subprocess.run(
            [sys.executable, "-m", "mobile_nas", "search", "--space", "fmnist28",
             "--dataset", "synthetic", "--strategy", "random", "--evaluator", "synflow",
             "--latency-target-ms", "1000", "--table", str(table), "--trials", "25",
             "--verify-top", "0", "--out", str(tmp_path / "run")],
            stdout=f, stderr=subprocess.STDOUT, timeout=300).returncode
    text = log.read_text()
    assert code == 0, text
    bar_lines = [s for s in _lines(text) if "search random" in s]
    assert "\r" not in text
    assert 2 <= len(bar_lines) <= 14, bar_lines  # was one redraw per trial (25+)
    assert "25/25" in bar_lines[-1]
    assert len(_lines(text)) < 40, text
