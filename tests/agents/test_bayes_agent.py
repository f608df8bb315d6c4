"""The ``bayes`` baseline: the most likely next action given only the session so far, on real
simulated sessions, scored against the shopper's own distributions."""

from __future__ import annotations

import pytest

from agents import BayesAgent, HeuristicAgent, make_agent
from benchmarks.headroom import shopper_distributions
from rewards.action import exact_match
from shop_env.actions import Action, parse_response
from shop_env.datasets import load_sessions
from shop_env.observations import build_states
from shop_env.sessions import Session, Step

SPEC = "synthetic:24?seed=6"


@pytest.fixture(scope="module")
def states() -> list:
    return build_states(load_sessions(SPEC))


@pytest.fixture(scope="module")
def agent(states) -> BayesAgent:
    return make_agent("bayes", states=states, samples_per_category=30)


def _expected_exact(agent, states, shopper) -> float:
    """Mean over states of the answer's exact-match probability under the shopper's own distribution."""
    total = 0.0
    for state in states:
        answer = parse_response(agent.act(state.observation)).action
        total += sum(p for gold, p in shopper[(state.session_id, state.step)][1] if exact_match(answer, gold))
    return total / len(states)


def test_bayes_answers_every_state_with_a_valid_action_and_beats_the_heuristic(agent, states):
    shopper = shopper_distributions(s.session_id for s in states)
    for state in states:
        assert parse_response(agent.act(state.observation)).action.type in ("click", "type_and_submit", "terminate")
    bayes, heuristic = _expected_exact(agent, states, shopper), _expected_exact(HeuristicAgent(), states, shopper)
    oracle = sum(max(p for _, p in shopper[(s.session_id, s.step)][1]) for s in states) / len(states)
    # Expected exact match under the shopper's distributions: the observable optimum sits between a
    # hand-written rule and the mind-reading oracle (about 0.35 vs 0.1 vs 0.45 on this data).
    assert heuristic + 0.1 < bayes <= oracle + 1e-9


def test_bayes_never_leaves_on_the_first_page_and_answers_deterministically(agent, states):
    some = states[:8]
    again = BayesAgent.from_states(some, samples_per_category=30)
    for state in some:
        assert again.act(state.observation) == agent.act(state.observation)
    for state in states:
        if state.step == 0:  # the shopper never leaves before acting once, and the posterior knows it
            assert parse_response(agent.act(state.observation)).action != Action("terminate")


def test_bayes_needs_synthetic_states_of_one_shop(states):
    with pytest.raises(ValueError, match="needs states"):
        make_agent("bayes")
    logged = build_states([Session("logged-1", [Step("https://shop.test/", "<html></html>", Action("terminate"))])])
    with pytest.raises(ValueError, match="not a synthetic session id"):
        BayesAgent.from_states(logged)
    other = build_states(load_sessions("synthetic:2?seed=7"))
    with pytest.raises(ValueError, match="several synthetic shops"):
        BayesAgent.from_states(states[:3] + other)
    with pytest.raises(KeyError, match="no answer"):
        BayesAgent.from_states(states[:1], samples_per_category=5).act({"session_id": "syn-s6-999999", "step": 0})
