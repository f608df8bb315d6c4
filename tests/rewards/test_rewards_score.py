"""score(): the whole reward, its format gate and switches, and that it never raises."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards import RewardBreakdown, RewardConfig, score
from shop_env.actions import Action, FormatError

GOLD = Action("click", "search_results.alpine_tent.view_product")


def response(action: dict, rationale: str = "I want a closer look at this tent.") -> str:
    return json.dumps({"rationale": rationale, "action": action})


GOOD = response({"type": "click", "name": GOLD.name})


def test_full_reward_is_format_plus_certainty_plus_action():
    result = score(GOOD, GOLD, self_certainty=4.0)
    assert result.valid and result.error is None
    assert result.format == 1.0
    assert result.self_certainty == pytest.approx(0.005 * 4.0)
    assert (result.type, result.attribute, result.value) == pytest.approx((0.3, 0.2, 1000.0))
    assert result.total == pytest.approx(1.0 + 0.02 + 1000.5)
    assert result.total == pytest.approx(result.format + result.self_certainty + result.action)


def test_code_fenced_response_is_valid():
    assert score(f"```json\n{GOOD}\n```", GOLD).valid


@pytest.mark.parametrize("bad", [
    "", "   ", "click it", "[]", '{"rationale": "x"}', '{"action": {"type": "click"}}',
    '{"rationale": 3, "action": {"type": "click"}}', '{"rationale": "x", "action": {"type": "hover"}}',
    '{"rationale": "x", "action": {"type": "click", "name": 7}}', GOOD + " trailing", GOOD[:-1],
    None, 42, b'{"rationale": "x", "action": {"type": "terminate"}}', ["list"],
])
def test_invalid_format_pays_nothing(bad):
    result = score(bad, GOLD, self_certainty=10.0)
    assert not result.valid
    assert isinstance(result.error, str) and result.error
    assert result.total == result.format == result.type == result.attribute == result.value == 0
    assert result.self_certainty == 0


def test_error_is_the_parser_message():
    assert score('{"rationale": "x"}', GOLD).error == "response.action is missing"


def test_use_format_switch():
    result = score(GOOD, GOLD, RewardConfig(use_format=False), self_certainty=2.0)
    assert result.format == 0 and result.total == pytest.approx(0.01 + 1000.5)
    # The gate still applies: an invalid response earns nothing even without the format term.
    assert score("nope", GOLD, RewardConfig(use_format=False)).total == 0


def test_use_self_certainty_switch():
    assert score(GOOD, GOLD, RewardConfig(use_self_certainty=False), self_certainty=2.0).self_certainty == 0


def test_format_weight_and_alpha_flow_through():
    result = score(GOOD, GOLD, RewardConfig(format_weight=2.5, self_certainty_alpha=0.1), self_certainty=3)
    assert result.format == 2.5 and result.self_certainty == pytest.approx(0.3)


def test_binary_mode():
    config = RewardConfig(action_reward="binary")
    assert score(GOOD, GOLD, config).total == pytest.approx(1.0 + 1.0)
    wrong = response({"type": "click", "name": "cart.checkout"})
    assert score(wrong, GOLD, config).total == pytest.approx(1.0)


@pytest.mark.parametrize("certainty", [None, math.nan, math.inf, -math.inf, "3.0", object(), [1, 2]])
def test_unusable_self_certainty_counts_as_zero(certainty):
    result = score(GOOD, GOLD, self_certainty=certainty)
    assert result.self_certainty == 0 and math.isfinite(result.total)


def test_tensor_self_certainty_is_accepted():
    import torch

    assert score(GOOD, GOLD, self_certainty=torch.tensor(2.0)).self_certainty == pytest.approx(0.01)
    assert score(GOOD, GOLD, self_certainty=torch.tensor(math.nan)).self_certainty == 0


def test_gold_may_be_a_dict():
    assert score(GOOD, GOLD.to_dict()).total == score(GOOD, GOLD).total


def test_bad_gold_is_a_clear_error():
    with pytest.raises(FormatError, match="gold.type"):
        score(GOOD, {"type": "hover"})
    with pytest.raises(TypeError, match="gold must be"):
        score(GOOD, "click")


def test_breakdown_to_dict_is_json_ready():
    data = score(GOOD, GOLD, self_certainty=1.0).to_dict()
    assert set(data) == {"format", "type", "attribute", "value", "self_certainty", "total", "valid",
                         "error", "action"}
    json.dumps(data)
    assert isinstance(score("x", GOLD), RewardBreakdown)


# --- never raises -------------------------------------------------------------------------

ANY_CHAR = st.characters(codec=None, categories=None)  # includes lone surrogates
JSONISH = st.sampled_from(['{', '}', '"', ':', ',', '[', ']', '```', '\\', 'rationale', 'action', 'type',
                           'click', 'name', 'text', 'terminate', 'type_and_submit', ' ', '\n', 'null',
                           '1e999', 'NaN', '\ud800'])


def _assert_sane(result: RewardBreakdown) -> None:
    values = [result.format, result.type, result.attribute, result.value, result.self_certainty,
              result.total]
    assert all(isinstance(v, float) and math.isfinite(v) for v in values)
    if not result.valid:
        assert result.total == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(ANY_CHAR, max_size=300), certainty=st.one_of(st.none(), st.floats()))
def test_fuzz_arbitrary_text(text, certainty):
    _assert_sane(score(text, GOLD, self_certainty=certainty))


@settings(max_examples=300, deadline=None)
@given(text=st.lists(JSONISH, max_size=40).map("".join))
def test_fuzz_json_like_text(text):
    _assert_sane(score(text, GOLD))


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(ANY_CHAR, max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    rationale=st.one_of(st.text(ANY_CHAR, max_size=50), json_values),
    kind=st.sampled_from(["click", "type_and_submit", "terminate", "scroll", "hover", ""]),
    name=st.one_of(st.text(ANY_CHAR, max_size=60), json_values),
    text=st.one_of(st.text(ANY_CHAR, max_size=60), json_values),
    gold=st.sampled_from([GOLD, Action("type_and_submit", "search.q", "red tent"), Action("terminate")]),
    binary=st.booleans(),
)
def test_fuzz_structured_responses(rationale, kind, name, text, gold, binary):
    raw = json.dumps({"rationale": rationale, "action": {"type": kind, "name": name, "text": text}})
    config = RewardConfig(action_reward="binary" if binary else "hierarchical")
    result = score(raw, gold, config, self_certainty=1.0)
    _assert_sane(result)
    well_formed = isinstance(rationale, str) and isinstance(name, str) and isinstance(text, str) and kind in (
        "click", "type_and_submit", "terminate", "scroll")
    assert result.valid == well_formed


def test_megabyte_inputs_do_not_raise():
    mb = 1 << 20
    cases = [
        "x" * mb,
        "{" * mb,
        '{"rationale": "' + "[" * mb,
        '{"a": ' + "[" * 100_000 + "]" * 100_000 + ', "rationale": "r", "action": {"type": "terminate"}}',
        response({"type": "click", "name": "tent " * (mb // 5)}),
        response({"type": "type_and_submit", "name": "search.q", "text": "red tent " * (mb // 9)}),
        response({"type": "terminate"}, rationale="word " * (mb // 5)),
        response({"type": "click", "name": "\ud800" * mb}),
    ]
    gold_text = Action("type_and_submit", "search.q", "red tent")
    for raw in cases:
        for gold in (GOLD, gold_text):
            _assert_sane(score(raw, gold, self_certainty=1.0))
    # A megabyte prediction against a short gold is valid format but far below the threshold.
    long_click = score(cases[4], Action("click", "tent"))
    assert long_click.valid and long_click.value == 0 and long_click.attribute == 0.2


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=200),
    st.builds(response, st.fixed_dictionaries({
        "type": st.sampled_from(["click", "type_and_submit", "terminate", "fly"]),
        "name": st.sampled_from([GOLD.name, "search_input", " " + GOLD.name, ""]),
        "text": st.sampled_from(["tent", "Tent!", ""]),
    })),
))
def test_score_answer_is_score_plus_the_prediction_it_judged(text):
    from rewards import ScoredAnswer, exact_match, score_answer, type_match
    from shop_env.actions import parse_response

    for gold in (GOLD, Action("type_and_submit", "search_input", "tent"), Action("terminate")):
        scored = score_answer(text, gold)
        assert isinstance(scored, ScoredAnswer)
        assert scored.breakdown == score(text, gold)
        try:
            pred = parse_response(text).action
        except FormatError:
            pred = None
        assert scored.action == pred
        assert scored.valid == (pred is not None)
        assert scored.exact_match == (pred is not None and exact_match(pred, gold))
        assert scored.type_match == (pred is not None and type_match(pred, gold))
