import os

import pytest

os.environ.setdefault("PYTHONWARNINGS", "ignore")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """No test writes the user's cache (extended latency tables, dataset copies): every
    process the tests start inherits a throw-away XDG_CACHE_HOME."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(2)
    yield


@pytest.fixture
def run_cli(capsys):
    """Runs ``mobile-nas ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from mobile_nas.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 2
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
