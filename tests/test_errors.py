"""Settings errors: the library raises them with fields and words them in its own terms;
the CLI words them with its flags, on one line, exit code 2."""

import pickle

import pytest

from mobile_nas.cli import error_line, flag
from mobile_nas.errors import MobileNasError, OutOfRangeError, SettingError
from mobile_nas.search.errors import SearchError, SearchSettingError
from mobile_nas.search.runner import SearchConfig, run_search


def test_a_library_call_raises_the_fields_and_names_no_flag(tmp_path):
    with pytest.raises(OutOfRangeError) as info:
        run_search(SearchConfig(space="fmnist28", strategy="random",
                                out_dir=str(tmp_path / "run"), trials=0,
                                latency_target_ms=0.3, progress=False))
    exc = info.value
    assert (exc.what, exc.value, exc.allowed) == ("trials", 0, "a positive integer")
    assert str(exc) == "trials must be a positive integer, got 0"
    assert not (tmp_path / "run").exists()


def test_a_conflict_names_every_parameter_in_its_fields(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SearchSettingError) as info:
        run_search(SearchConfig(space="fmnist28", strategy="random",
                                out_dir=str(tmp_path / "file"), trials=1,
                                latency_target_ms=0.3, progress=False))
    exc = info.value
    assert isinstance(exc, SearchError) and isinstance(exc, MobileNasError)
    assert (exc.what, exc.value) == ("out_dir", str(tmp_path / "file"))
    assert str(exc) == f"out_dir {str(tmp_path / 'file')!r} exists and is not a folder"
    assert error_line(exc) == f"--out {str(tmp_path / 'file')!r} exists and is not a folder"


def test_worded_names_each_parameter_and_a_nested_setting_error():
    inner = SettingError("table", "pass {what} T.json")
    exc = SettingError("profile_missing", "{what} cannot fill it ({others[0]} {value}): "
                       "{cause}", value=True, others=("measure",), cause=inner)
    assert str(exc) == "profile_missing cannot fill it (measure True): pass table T.json"
    assert exc.worded(flag) == ("--profile-missing cannot fill it (--measure True): pass "
                                "--table T.json")
    text_with_braces = SettingError("out_dir", "{what} {value!r} is a file", value="{x}.d")
    assert str(text_with_braces) == "out_dir '{x}.d' is a file"  # user text is a field


def test_the_fields_survive_pickling():
    """Errors raised in worker processes come back whole."""
    exc = pickle.loads(pickle.dumps(OutOfRangeError("skip_margin", 12.0, "in [0, 10)")))
    assert isinstance(exc, OutOfRangeError)
    assert (exc.what, exc.value, exc.allowed) == ("skip_margin", 12.0, "in [0, 10)")
    assert error_line(exc) == "--skip-margin must be in [0, 10), got 12.0"


def test_flags_follow_the_parameter_names_unless_mapped():
    assert flag("latency_target") == "--latency-target"
    assert (flag("out_dir"), flag("num_classes"), flag("input_size")) == (
        "--out", "--classes", "--input")


def test_the_cli_line_names_the_flag_and_exits_2(run_cli, tmp_path):
    code, out, err = run_cli("search", "--space", "nb201", "--evaluator", "table",
                             "--trials", "2", "--latency-target-ms", "1",
                             "--out", str(tmp_path / "run"))
    assert code == 2 and out == ""
    assert err == "mobile-nas: error: --evaluator table needs --accuracy-csv FILE\n"
    code, _, err = run_cli("search", "--space", "fmnist28", "--trials", "2",
                           "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2 and err == ("mobile-nas: error: give a target: --latency-target-ms or "
                                 "--latency-target, and/or --macs-target\n")
