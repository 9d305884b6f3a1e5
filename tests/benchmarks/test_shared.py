"""benchmarks/_shared.py: the scripts' run wrapper, results paths and machine facts."""

import pytest

from mobile_nas.cost.latency.runner import this_machine
from mobile_nas.errors import MobileNasError
from tests.benchmarks import REPO, load_script

S = load_script("_shared")


def test_run_main_answers_a_users_error_with_one_line_and_exit_2(capsys):
    assert S.run_main(lambda: None) == 0 and S.run_main(lambda: 3) == 3

    def fails(exc):
        def run():
            raise exc
        return run

    assert S.run_main(fails(MobileNasError("bad table"))) == 2
    assert capsys.readouterr().err == "error: bad table\n"
    assert S.run_main(fails(KeyError("x")), prog="bench", also=(KeyError,)) == 2
    assert capsys.readouterr().err == "bench: error: 'x'\n"
    with pytest.raises(ValueError):  # a bug is not the user's to fix: it propagates
        S.run_main(fails(ValueError("bug")))


def test_paths_and_machine_facts():
    assert S.result_path("x") == REPO / "benchmarks" / "results" / "x"
    assert S.PROTOCOLS == REPO / "benchmarks" / "protocols"
    m = this_machine()
    facts = S.machine_facts("cpu", "cores", "host", torch="2")
    assert facts == {"cpu": m.cpu, "cores": m.cpu_count, "host": m.device, "torch": "2"}
    assert list(facts) == ["cpu", "cores", "host", "torch"]
