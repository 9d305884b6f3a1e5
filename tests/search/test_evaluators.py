"""EVALUATORS: run_search builds its evaluator by name through the registry."""

import pytest

from mobile_nas.errors import RegistryError
from mobile_nas.search.evaluators import EVALUATORS, register_evaluator
from mobile_nas.search.runner import SearchConfig, SearchError, run_search
from tests.search.conftest import WidthEvaluator, macs_latency_ms


def _config(tmp_path, evaluator):
    return SearchConfig(space="fmnist28", strategy="random", trials=2, out_dir=str(tmp_path),
                        latency_target_ms=1e9, progress=False, evaluator=evaluator,
                        verify_top=0, dataset="synthetic")


def test_the_built_in_evaluators_are_registered_once():
    assert EVALUATORS.names() == ["naswot", "proxy", "supernet", "synflow", "table"]
    with pytest.raises(RegistryError, match="already registered"):
        register_evaluator("proxy")(lambda *a: None)


def test_run_search_builds_a_registered_evaluator_by_name(tmp_path, monkeypatch):
    seen = []

    def factory(config, space, out_dir, distributed):
        seen.append((config.evaluator, space.name, out_dir, distributed))
        return lambda: WidthEvaluator(space=space)

    monkeypatch.setitem(EVALUATORS._items, "width", factory)
    result = run_search(_config(tmp_path, "width"), latency_fn=macs_latency_ms)
    assert seen == [("width", "fmnist28", tmp_path, None)] and result.trials == 2


def test_unknown_and_table_evaluators_are_refused_before_the_study(tmp_path):
    with pytest.raises(SearchError, match="unknown evaluator 'nope'; known: naswot, proxy"):
        run_search(_config(tmp_path, "nope"), latency_fn=macs_latency_ms)
    with pytest.raises(SearchError, match=r"'table' needs run_search\(\.\.\., evaluator="):
        run_search(_config(tmp_path, "table"), latency_fn=macs_latency_ms)
    assert not (tmp_path / "study.db").exists()
