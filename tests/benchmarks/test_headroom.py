"""benchmarks/headroom.py: policies built on a real evaluation, scored against the shopper's
own action distributions (simulated again from the session ids)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents import OracleAgent
from agents.base import BaseAgent
from agents.evaluation import evaluate, load_predictions
from benchmarks.headroom import MODEL_ROW, headroom, main, shopper_distributions
from shop_env.datasets import load_sessions
from shop_env.observations import build_states
from shop_env.synthetic import generate_session

SPEC = "synthetic:12?seed=4"
RULE_0 = "terminate where P(leave) >= 0, else the model"


class NeverLeaves(BaseAgent):
    """Always clicks (a name no page has): never terminates, never right."""

    name = "never-leaves"

    def act(self, observation):
        return json.dumps({"rationale": "I keep browsing.", "action": {"type": "click", "name": "nowhere"}})


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("headroom")
    states = build_states(load_sessions(SPEC))
    evaluate(NeverLeaves(), states, root / "never", progress=False)
    evaluate(OracleAgent.from_states(states), states, root / "oracle", progress=False)
    return root, states


def test_the_recorded_distribution_is_the_one_the_shopper_sampled_from():
    plain, recorded = generate_session(4, 2), generate_session(4, 2, keep_distribution=True)
    assert [s.action for s in plain.steps] == [s.action for s in recorded.steps], "recording changes no draw"
    for step in recorded.steps:
        dist = step.meta["action_distribution"]
        assert sum(d["prob"] for d in dist) == pytest.approx(1.0)
        assert max(d["prob"] for d in dist) == pytest.approx(step.meta["oracle_prob"], abs=1e-6)
        assert step.action.to_dict() in [d["action"] for d in dist], "the logged action had probability > 0"


def test_rows_score_the_leaving_rule_each_reward_choice_and_the_optima(evaluated, tmp_path, capsys):
    root, states = evaluated
    out = tmp_path / "rows.json"
    assert main([str(root / "never"), "--thresholds", "2", "0", "--bayes-samples", "30", "--no-progress",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"| {RULE_0} |" in printed and f"Posterior over {len(states)} states: median effective sample size" in printed
    rows = json.loads(out.read_text())
    own = rows[MODEL_ROW]
    assert own["exact_match"] == 0.0 and rows["terminate where P(leave) >= 2, else the model"] == own
    # Leaving wherever the shopper might: every terminate-gold state is right.
    assert rows[RULE_0]["per_type"]["terminate"]["exact_match"] == 1.0
    # Against an answer that is never right, leaving pays more expected exact match wherever it is possible...
    assert rows["model or terminate, by expected exact match"]["per_type"]["terminate"]["exact_match"] == 1.0
    # ...but the Shop-R1 reward pays a wrong-name click 0.3 + 0.2 on click-gold states against 0.3 for a right
    # terminate: it prefers leaving only where 0.3 P(leave) > 0.5 P(click).
    shopper = shopper_distributions(s.session_id for s in states)
    def mass(dist, kind):
        return sum(p for action, p in dist if action.type == kind)
    leaves = sum(1 for s in states
                 if 0.3 * mass(shopper[(s.session_id, s.step)][1], "terminate")
                 > 0.5 * mass(shopper[(s.session_id, s.step)][1], "click"))
    shop_r1 = rows["model or terminate, by expected Shop-R1 reward"]
    assert shop_r1["predicted_type_share"]["terminate"] == pytest.approx(leaves / len(states))
    assert shop_r1["per_type"]["terminate"]["exact_match"] < 1.0
    # The exact-match optimum is the oracle; DARS's optimum leaves only where nothing else is possible.
    oracle = json.loads((root / "oracle" / "metrics.json").read_text())
    assert rows["exact match's optimum (oracle)"]["exact_match"] == pytest.approx(oracle["exact_match"], abs=0.02)
    assert (rows["Shop-R1 reward's optimum (shopper's actions)"]["predicted_type_share"]["terminate"]
            <= rows["exact match's optimum (oracle)"]["predicted_type_share"]["terminate"])
    assert "exact_match_ci" in own and own["n"] == len(states)
    # The page rule: terminate on every page of one type, the model's answer elsewhere.
    search = rows["terminate on every search page, else the model"]
    on_search = [s for s in states if s.meta["page_type"] == "search"]
    assert search["predicted_type_share"]["terminate"] == pytest.approx(len(on_search) / len(states))
    assert search["exact_match"] == pytest.approx(
        sum(s.gold.type == "terminate" for s in on_search) / len(states))
    assert {label for label in rows if label.startswith("terminate on every ")} == {
        f"terminate on every {page} page, else the model" for page in {s.meta["page_type"] for s in states}}
    # The observable optima see only the history. Under one posterior, the Shop-R1 reward (DARS)
    # leaves only where exact match would too (0.3 P(leave) >= 1000 P(a) implies P(leave) >= P(a)).
    # The observable leaving rule at 0 leaves wherever the posterior gives leaving any chance,
    # which includes every state the shopper left from.
    observable = rows["Shop-R1 reward's observable optimum (Bayes)"]
    assert (observable["predicted_type_share"]["terminate"]
            <= rows["exact match's observable optimum (Bayes)"]["predicted_type_share"]["terminate"])
    assert observable["n"] == len(states) and "exact_match_ci" in observable
    rule = rows["terminate where observable P(leave) >= 0, else the Shop-R1 observable optimum"]
    assert rule["per_type"]["terminate"]["exact_match"] == 1.0


def test_a_state_the_shop_would_not_produce_is_refused(evaluated):
    root, _ = evaluated
    records = load_predictions(root / "never" / "predictions.jsonl")
    shopper = shopper_distributions(k[0] for k in records)
    key = next(iter(records))
    shopper[key] = (shopper[key][0].__class__("terminate") if shopper[key][0].type != "terminate"
                    else shopper[key][0].__class__("click", "elsewhere"), shopper[key][1])
    with pytest.raises(ValueError, match="another version of the shop"):
        headroom(records, shopper)


def test_user_errors_exit_2_with_a_message(evaluated, tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "no predictions.jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    record = {"session_id": "logged-42", "step": 0, "gold": {"type": "terminate"}, "pred": None, "reward": {}}
    (bad / "predictions.jsonl").write_text(json.dumps(record) + "\n")
    assert main([str(bad)]) == 2
    assert "not a synthetic session id" in capsys.readouterr().err
    root, _ = evaluated
    assert main([str(root / "never"), "--bayes-samples", "-1"]) == 2
    assert "--bayes-samples must be >= 0" in capsys.readouterr().err
