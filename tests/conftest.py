import os

import pytest

os.environ.setdefault("PYTHONWARNINGS", "ignore")


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
