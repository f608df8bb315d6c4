"""benchmarks/terminate_frontier.py: a perfect leaving rule scored on top of a real evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents import OracleAgent
from agents.base import BaseAgent
from agents.evaluation import evaluate
from benchmarks.terminate_frontier import MODEL_ROW, main, shopper_terminate_probability
from shop_env.datasets import load_sessions
from shop_env.observations import build_states

SPEC = "synthetic:12?seed=4"


class NeverLeaves(BaseAgent):
    """Always clicks (a name no page has): never terminates."""

    name = "never-leaves"

    def act(self, observation):
        return json.dumps({"rationale": "I keep browsing.", "action": {"type": "click", "name": "nowhere"}})


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("frontier")
    states = build_states(load_sessions(SPEC))
    evaluate(NeverLeaves(), states, root / "never", progress=False)
    evaluate(OracleAgent.from_states(states), states, root / "oracle", progress=False)
    return root, states


def test_terminating_where_the_shopper_most_likely_leaves_scores_the_oracle_terminate_states(evaluated, tmp_path,
                                                                                              capsys):
    root, states = evaluated
    out = tmp_path / "rows.json"
    assert main([str(root / "never"), "--sessions", SPEC, "--thresholds", "2", "0", "--json", str(out)]) == 0
    assert "terminate if P(terminate) >= 0 |" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    own, never, always = rows[MODEL_ROW], rows["terminate if P(terminate) >= 2"], rows["terminate if P(terminate) >= 0"]
    assert own["per_type"]["terminate"]["exact_match"] == 0.0 and never["exact_match"] == own["exact_match"]
    # t = 0 terminates exactly where the oracle does: on terminate-gold states it scores as the oracle.
    oracle = json.loads((root / "oracle" / "metrics.json").read_text())
    assert always["per_type"]["terminate"]["exact_match"] == pytest.approx(oracle["per_type"]["terminate"]["exact_match"])
    leaves = sum(1 for p in shopper_terminate_probability(load_sessions(SPEC)).values() if p > 0)
    assert always["predicted_type_share"]["terminate"] == pytest.approx(leaves / len(states))
    assert "exact_match_ci" in always and always["n"] == len(states)


def test_user_errors_exit_2_with_a_message(evaluated, tmp_path, capsys):
    root, _ = evaluated
    assert main([str(tmp_path / "missing")]) == 2
    assert "no predictions.jsonl" in capsys.readouterr().err
    assert main([str(root / "never"), "--sessions", "synthetic:5?seed=99"]) == 2
    assert "pass the --sessions the evaluation used" in capsys.readouterr().err
