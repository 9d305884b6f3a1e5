"""The pre-registration guard: a protocol is read with the commit that added it, and runs
outside it (an extra seed, another budget or artefact, a start before the commit) are refused;
so is a protocol edited after its commit, or never committed."""

import json
import subprocess
from datetime import datetime, timedelta

import pytest

from mobile_nas.report.protocol import ProtocolError, load_protocol, require_same

DOC = {"schema_version": 1, "benchmark": "demo", "question": "q?", "space": "fmnist28",
       "seeds": {"search": [1, 2, 3], "training": [0, 1]}, "epochs": 1, "budgets": [120],
       "strategies": ["rl", "random"], "references": ["fmnist28_mnasnet"],
       "latency_target": "fmnist28_mnasnet", "artifacts": {"supernet": "a" * 64},
       "recipe": {}, "selection_rule": "best", "statistical_test": "wilcoxon",
       "decision_rule": "p < 0.05"}


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture()
def committed(tmp_path):
    repo = tmp_path / "repo"
    (repo / "protocols").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    path = repo / "protocols" / "demo.json"
    path.write_text(json.dumps(DOC))
    _git(repo, "add", "protocols/demo.json")
    _git(repo, "commit", "-q", "-m", "protocol")
    return path


def test_reads_the_commit_that_added_it(committed):
    reg = load_protocol(committed)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=committed.parent, check=True,
                          capture_output=True, text=True).stdout.strip()
    assert reg.commit == head
    assert reg.stamp()["protocol_commit"] == head
    assert reg.protocol.seeds["search"] == [1, 2, 3]


def test_refuses_an_extra_seed_and_accepts_a_listed_one(committed):
    reg = load_protocol(committed)
    later = (reg.committed_at + timedelta(minutes=5)).isoformat()
    reg.check_run(seeds={"search": 3, "training": 1}, budget=120, started_at=later,
                  artifacts={"supernet": "a" * 64})
    with pytest.raises(ProtocolError, match="search seed 4 is outside"):
        reg.check_run(seeds={"search": 4}, started_at=later)
    with pytest.raises(ProtocolError, match="budget 40"):
        reg.check_run(seeds={"search": 1}, budget=40, started_at=later)
    with pytest.raises(ProtocolError, match="supernet sha256"):
        reg.check_run(seeds={"search": 1}, started_at=later, artifacts={"supernet": "b" * 64})


def test_refuses_a_run_older_than_the_protocol(committed):
    reg = load_protocol(committed)
    earlier = (reg.committed_at - timedelta(seconds=1)).isoformat()
    with pytest.raises(ProtocolError, match="before protocol demo.json was committed"):
        reg.check_run(seeds={"search": 1}, started_at=earlier)
    with pytest.raises(ProtocolError, match="no time zone"):
        reg.check_run(seeds={"search": 1}, started_at=datetime(2030, 1, 1).isoformat())


def test_refuses_an_edited_or_uncommitted_protocol(committed):
    committed.write_text(json.dumps({**DOC, "seeds": {"search": [1, 2, 3, 4]}}))
    with pytest.raises(ProtocolError, match="changed after commit"):
        load_protocol(committed)
    fresh = committed.with_name("fresh.json")
    fresh.write_text(json.dumps(DOC))
    with pytest.raises(ProtocolError, match="not committed"):
        load_protocol(fresh)


def test_refuses_a_malformed_protocol(committed):
    bad = committed.with_name("bad.json")
    bad.write_text(json.dumps({k: v for k, v in DOC.items() if k != "decision_rule"}))
    with pytest.raises(ProtocolError, match="lacks 'decision_rule'"):
        load_protocol(bad)


def test_runs_of_different_artefacts_are_not_mixed():
    same = {"a": {"supernet_sha256": "x", "table_sha256": "t"},
            "b": {"supernet_sha256": "x", "table_sha256": "t"}}
    require_same(same, ("supernet_sha256", "table_sha256"))
    with pytest.raises(ProtocolError, match="runs a and b differ in table_sha256"):
        require_same({**same, "b": {"supernet_sha256": "x", "table_sha256": "u"}},
                     ("supernet_sha256", "table_sha256"))
