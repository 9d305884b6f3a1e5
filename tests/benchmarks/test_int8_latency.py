"""benchmarks/int8_latency.py: the held-out errors and INT8/fp32 ratios from crafted timings,
the page generated from them, and the refusal of an fp32 table."""

from pathlib import Path

import pytest

from tests.benchmarks import load_script

REPO = Path(__file__).resolve().parents[2]


B = load_script("int8_latency")


class _Arch:
    def __init__(self, text):
        self.text = text

    def to_string(self):
        return self.text


def _timings(fp32, int8):
    return {"fp32": {"median_ms": fp32}, "int8": {"median_ms": int8}}


def test_compare_computes_errors_against_int8_and_ratios_to_fp32():
    names = ["a", "b", "c", "d"]
    measured = [_timings(0.2, 0.1), _timings(0.2, 0.3), _timings(0.4, 0.4), _timings(0.1, 0.2)]
    predicted = [0.104, 0.27, 0.4, 0.3]  # +4%, -10%, 0%, +50% against the INT8 medians
    r = B.compare(names, [_Arch(n) for n in names], predicted, measured)
    assert [round(x["error_pct"], 6) for x in r["rows"]] == [4.0, -10.0, 0.0, 50.0]
    assert r["check"]["mape"] == pytest.approx(16.0)
    assert r["check"]["within_5"] == pytest.approx(0.5)  # a (4%) and c (0%)
    assert r["check"]["within_10"] == pytest.approx(0.75)  # b at exactly 10% counts
    assert r["int8_slower"] == 2  # b and d
    assert r["median_int8_over_fp32"] == pytest.approx(1.25)  # of 0.5, 1.5, 1.0, 2.0
    assert (r["min_int8_over_fp32"], r["max_int8_over_fp32"]) == (0.5, 2.0)


def test_the_page_shows_every_run_and_the_tables_own_check():
    names = ["a", "b"]
    runs = [B.compare(names, [_Arch(n) for n in names], [0.1, 0.2],
                      [_timings(0.1, 0.1), _timings(0.1, 0.25)]) for _ in range(2)]
    result = {"date": "2026-11-30", "table": "t.json", "space": "fmnist28", "threads": 1,
              "provider": "CPUExecutionProvider", "table_built": None, "cpu": "cpu",
              "load_before": 0.1, "load_after": 0.2, "rounds": 30, "n": 1, "seed": 7,
              "table_calibration": {"networks": 20, "scale": 0.7, "overhead_ms": 0.0,
                                    "per_layer_ms": 0.0, "held_out_networks": 12,
                                    "held_out": {"mape": 9.3, "within_5": 0.33,
                                                 "within_10": 0.75}},
              "result": runs[0],
              "repeats": [{k: v for k, v in r.items() if k != "rows"} for r in runs]}
    md = B.markdown(result)
    assert "MAPE 10.00%" in md and "| 2 | 10.00% | 50% | 50% |" in md
    assert "INT8 is slower than fp32 on 1 of 2 networks" in md
    assert "fitted on 20 networks" in md and "MAPE 9.30%" in md
    assert "| b | 0.1000 | 0.2500 | 2.50 | 0.2000 | -20.0% |" in md


def test_an_fp32_table_is_refused(tmp_path, capsys):
    assert B.main(["--table", str(REPO / "latency_tables" / "fmnist28.json"),
                   "--out", str(tmp_path / "x")]) == 2
    assert "is an fp32 table" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("argv, needle", [(["--repeats", "0"], "positive"),
                                          (["--table", "no/such.json"], "error: ")])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    try:
        code = B.main([*argv, "--out", str(tmp_path / "x")])
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()
