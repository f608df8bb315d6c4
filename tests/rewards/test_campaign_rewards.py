"""Adversarial-campaign regressions of the parser and rewards (overflow, ROUGE bound, str subclasses)."""

from __future__ import annotations

import json
import math
import random
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewards
from benchmarks import fuzz
from rewards.action import thresholded_similarity
from rewards.similarity import tokenize, tokenize_bounded
from shop_env import Session, Step
from shop_env.actions import Action, FormatError, parse_response
from shop_env.env import ShopReplayEnv


@pytest.mark.parametrize("weights", [{"dars_factor": 1e308, "input_name_value": 1e308},
                                     {"format_weight": 1.5e308, "type_reward": 1e308},
                                     {"self_certainty_alpha": 1e306}])
def test_weights_whose_sum_overflows_are_refused(weights: dict) -> None:
    with pytest.raises(ValueError, match="largest reward"):
        rewards.RewardConfig.from_dict(weights)
    page = '<body><a name="x">X</a></body>'
    with pytest.raises(ValueError, match="largest reward"):
        ShopReplayEnv(sessions=[Session("s", [Step("u", page, Action("click", "x"))])], reward=weights)


def test_the_maximum_reward_is_reached_and_finite() -> None:
    config = rewards.RewardConfig(dars_factor=1.5e308, self_certainty_alpha=1.0)
    assert math.isfinite(config.max_reward())
    text = json.dumps({"rationale": "r", "action": {"type": "click", "name": "x"}})
    assert rewards.score(text, Action("click", "x"), config, self_certainty=1.0).total == config.max_reward() - 999
    # A caller's huge (finite) self-certainty cannot overflow the total either.
    assert math.isfinite(rewards.score(text, Action("click", "x"), config, self_certainty=1e308).total)


def test_a_long_click_name_of_short_words_costs_what_the_gold_costs() -> None:
    name = "add to " * (50_000_000 // 7)  # 50 MB
    tracemalloc.start()
    started = time.perf_counter()
    try:
        assert thresholded_similarity(name, "add to cart", 0.75) == 0.0
        assert thresholded_similarity("add to cart", name, 0.75) == 0.0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # was 1.5 GB
    assert time.perf_counter() - started < 30  # very generous: milliseconds here, was 2.6-10 s


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("ab Kİ\u212a9-\u03a3 "), max_size=300), st.integers(0, 40))
def test_bounded_tokenize_is_tokenize_or_none(text: str, limit: int) -> None:
    import rewards.similarity as similarity

    old = similarity._CHUNK_CHARS
    similarity._CHUNK_CHARS = 7  # exercise the chunk joins on short texts
    try:
        full = tokenize(text)
        got = tokenize_bounded(text * 10, limit * 10)
    finally:
        similarity._CHUNK_CHARS = old
    expected = tokenize(text * 10)
    assert got == (expected if len(expected) <= limit * 10 else None)
    assert full == tokenize(text)


def test_thresholded_similarity_equals_plain_rouge_when_kept() -> None:
    rng = random.Random(0)
    for _ in range(300):
        a = " ".join(rng.choice("abcde") for _ in range(rng.randrange(1, 12)))
        b = " ".join(rng.choice("abcde") for _ in range(rng.randrange(1, 12)))
        sim = rewards.rouge_l(a, b)
        assert thresholded_similarity(a, b, 0.5) == (sim if sim >= 0.5 else 0.0)


def test_a_str_subclass_with_raising_methods_is_only_ever_a_format_error() -> None:
    good = fuzz._RaisingStr(json.dumps({"rationale": "r", "action": {"type": "click", "name": "results.tent"}}))
    assert parse_response(good).action == Action("click", "results.tent")
    with pytest.raises(FormatError):
        parse_response(fuzz._RaisingStr("  not json "))
    gold = Action("click", fuzz._RaisingStr("results.tent"))
    assert rewards.score(good, gold).valid
    assert rewards.exact_match(parse_response(good).action, gold)
    env = fuzz._fuzz_env()
    env.step(fuzz._RaisingStr("{}"))  # type_and_submit gold: an invalid response scores 0
    _, reward, *_ = env.step(good)
    assert reward > 1


@settings(max_examples=400)
@given(st.integers(0, 2**63))
def test_parser_and_rewards_are_total_and_finite(seed: int) -> None:
    fuzz.check_parser(random.Random(seed), ENV)


ENV = fuzz._fuzz_env()
