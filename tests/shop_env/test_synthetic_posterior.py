"""shop_env.synthetic.posterior: the Bayes posterior predictive of the next action given the
session so far, checked against the simulator's own distributions."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from shop_env.actions import Action
from shop_env.synthetic import build_catalog, generate_session
from shop_env.synthetic import posterior as posterior_module
from shop_env.synthetic.catalog import CATEGORIES
from shop_env.synthetic.intent import sample_intent
from shop_env.synthetic.posterior import IntentSample, posterior_predictive

SEED = 4


def _true_intent(index: int):
    """The intent session ``index`` was generated with (drawn as generate_session draws it)."""
    return sample_intent(random.Random(f"syn-session-{SEED}-{index}"), build_catalog(SEED))


def _as_dict(dist) -> dict[Action, float]:
    return {Action.from_dict(d["action"]) if isinstance(d, dict) else d[0]: (d["prob"] if isinstance(d, dict) else d[1])
            for d in dist}


@pytest.mark.parametrize("index", [0, 2, 5, 7])
def test_with_the_true_intent_alone_the_predictive_is_the_shoppers_own_distribution(index):
    session = generate_session(SEED, index, keep_distribution=True)
    steps = posterior_predictive(f"syn-s{SEED}-{index:06d}", IntentSample((_true_intent(index),), (0.0,)))
    assert len(steps) == len(session.steps)
    for got, logged in zip(steps, session.steps, strict=True):
        assert got.consistent and got.action == logged.action
        assert got.page_type == logged.meta["page_type"]
        want = _as_dict(logged.meta["action_distribution"])
        have = _as_dict(got.predictive)
        assert have.keys() == want.keys()
        for action, p in want.items():
            assert have[action] == pytest.approx(p, abs=1e-6)


def test_draws_are_stratified_by_category_with_prior_weights_summing_to_one():
    sample = IntentSample.draw(build_catalog(SEED), per_category=7, seed=1)
    assert len(sample.intents) == 7 * len(CATEGORIES)
    assert sum(math.exp(w) for w in sample.log_weights) == pytest.approx(1.0)
    for spec in CATEGORIES:
        assert sum(intent.category == spec.key for intent in sample.intents) == 7
    assert IntentSample.draw(build_catalog(SEED), per_category=7, seed=1) == sample, "seeded"
    with pytest.raises(ValueError, match="per_category"):
        IntentSample.draw(build_catalog(SEED), per_category=0)


def test_a_category_draw_keeps_the_category_and_the_default_draw_is_unchanged():
    catalog = build_catalog(SEED)
    for spec in CATEGORIES[:3]:
        assert sample_intent(random.Random("x"), catalog, spec.key).category == spec.key
    plain = sample_intent(random.Random("y"), catalog)
    assert sample_intent(random.Random("y"), catalog, None) == plain
    with pytest.raises(KeyError):
        sample_intent(random.Random("z"), catalog, "no-such-category")


def test_the_predictive_is_a_distribution_that_learns_from_the_history():
    sample = IntentSample.draw(build_catalog(SEED), per_category=40)
    for index in range(6):
        steps = posterior_predictive(f"syn-s{SEED}-{index:06d}", sample)
        for step in steps:
            probs = [p for _, p in step.predictive]
            assert sum(probs) == pytest.approx(1.0) and probs == sorted(probs, reverse=True)
            assert 1.0 <= step.effective_samples <= len(sample.intents) + 1e-9
        # Before any action every draw counts; after the first search only a few explain it.
        assert steps[0].effective_samples == pytest.approx(len(sample.intents))
        if len(steps) > 1 and steps[0].action.type == "type_and_submit":
            # A typed query names the product: only a few draws still explain the session.
            assert steps[1].consistent and steps[1].effective_samples < len(sample.intents) / 5


def test_the_predictive_never_reads_the_future(monkeypatch):
    sample = IntentSample.draw(build_catalog(SEED), per_category=20)
    sid = f"syn-s{SEED}-000003"
    full = posterior_predictive(sid, sample)
    assert len(full) >= 2
    real = posterior_module.generate_session

    def truncated(seed, i, **kwargs):
        session = real(seed, i, **kwargs)
        return dataclasses.replace(session, steps=session.steps[:1])

    monkeypatch.setattr(posterior_module, "generate_session", truncated)
    assert posterior_predictive(sid, sample) == full[:1]


def test_an_id_that_is_not_synthetic_is_refused():
    with pytest.raises(ValueError, match="not a synthetic session id"):
        posterior_predictive("logged-42", IntentSample.draw(build_catalog(SEED), per_category=1))
