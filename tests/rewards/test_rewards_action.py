"""Hierarchical action reward with DARS (every cell of docs/architecture.md §5 Table 1), binary reward,
exact match and type match (docs/architecture.md §6)."""

from __future__ import annotations

import pytest

from rewards import RewardConfig, action_reward, exact_match, rouge_l, type_match
from rewards.action import thresholded_similarity
from shop_env.actions import Action

NAME = "search_results.alpine_2_person_tent.view_product"
# 4 tokens; 3 shared with its near miss in order -> ROUGE-L F1 = 2*3/(4+4) = 0.75 exactly.
AT_THRESHOLD = ("alpine tent view product", "alpine tent buy product")
# 50 vs 49 tokens, LCS 37 -> F1 = 74/99 = 0.7474..., just below 0.75.
BELOW_GOLD = " ".join(f"w{i}" for i in range(50))
BELOW_PRED = " ".join([f"w{i}" for i in range(37)] + [f"x{i}" for i in range(12)])
TEXT = "two person tent"
DEFAULT = RewardConfig()
DARS_1 = RewardConfig(dars_factor=1)


def test_threshold_fixtures_are_what_they_claim():
    assert rouge_l(*AT_THRESHOLD) == 0.75
    assert 0.74 < rouge_l(BELOW_GOLD, BELOW_PRED) < 0.75


def click(name=NAME):
    return Action("click", name)


def typed(name="search_bar.search", text=TEXT):
    return Action("type_and_submit", name, text)


# (id, gold, pred, config, (type, attribute, value))
CELLS = [
    # terminate / scroll: the type is the whole reward.
    ("terminate-right", Action("terminate"), Action("terminate"), DEFAULT, (0.3, 0, 0)),
    ("terminate-with-junk-fields", Action("terminate"), Action("terminate", "x", "y"), DEFAULT, (0.3, 0, 0)),
    ("scroll-right", Action("scroll"), Action("scroll"), DEFAULT, (0.3, 0, 0)),
    ("terminate-wrong-type", Action("terminate"), click(), DEFAULT, (0, 0, 0)),
    ("scroll-wrong-type", Action("scroll"), Action("terminate"), DEFAULT, (0, 0, 0)),
    # click.
    ("click-exact", click(), click(), DEFAULT, (0.3, 0.2, 1000)),
    ("click-exact-dars-1", click(), click(), DARS_1, (0.3, 0.2, 1)),
    ("click-empty-name", click(), click(""), DEFAULT, (0.3, 0, 0)),
    ("click-blank-name", click(), click("  \n"), DEFAULT, (0.3, 0, 0)),
    ("click-name-at-threshold", click(AT_THRESHOLD[0]), click(AT_THRESHOLD[1]), DEFAULT, (0.3, 0.2, 750)),
    ("click-name-at-threshold-dars-1", click(AT_THRESHOLD[0]), click(AT_THRESHOLD[1]), DARS_1,
     (0.3, 0.2, 0.75)),
    ("click-name-below-threshold", click(BELOW_GOLD), click(BELOW_PRED), DEFAULT, (0.3, 0.2, 0)),
    ("click-unrelated-name", click(), click("cart.checkout"), DEFAULT, (0.3, 0.2, 0)),
    ("click-name-without-rouge-tokens", click("___"), click("___"), DEFAULT, (0.3, 0.2, 0)),
    ("click-wrong-type", click(), typed(NAME, "tent"), DEFAULT, (0, 0, 0)),
    ("click-wrong-type-terminate", click(), Action("terminate"), DEFAULT, (0, 0, 0)),
    # type_and_submit.
    ("input-exact", typed(), typed(), DEFAULT, (0.3, 0.2, 0.1 + 1000)),
    ("input-exact-dars-1", typed(), typed(), DARS_1, (0.3, 0.2, 0.1 + 1)),
    ("input-empty-name", typed(), typed(name=""), DEFAULT, (0.3, 0.1, 1000)),
    ("input-empty-text", typed(), typed(text=""), DEFAULT, (0.3, 0.1, 0.1)),
    ("input-both-empty", typed(), typed("", ""), DEFAULT, (0.3, 0, 0)),
    ("input-text-at-threshold", typed(text=AT_THRESHOLD[0]), typed(text=AT_THRESHOLD[1]), DEFAULT,
     (0.3, 0.2, 0.1 + 750)),
    ("input-text-below-threshold", typed(text=BELOW_GOLD), typed(text=BELOW_PRED), DEFAULT,
     (0.3, 0.2, 0.1)),
    ("input-name-at-threshold", typed(name=AT_THRESHOLD[0]), typed(name=AT_THRESHOLD[1]), DEFAULT,
     (0.3, 0.2, 0.075 + 1000)),
    ("input-name-below-threshold", typed(name=BELOW_GOLD), typed(name=BELOW_PRED), DEFAULT,
     (0.3, 0.2, 1000)),
    ("input-both-below-threshold-dars-1", typed(BELOW_GOLD, BELOW_GOLD), typed(BELOW_PRED, BELOW_PRED),
     DARS_1, (0.3, 0.2, 0)),
    ("input-wrong-type", typed(), click("search_bar.search"), DEFAULT, (0, 0, 0)),
    # Custom weights flow through.
    ("custom-weights", typed(), typed(),
     RewardConfig(type_reward=1, input_name_attr=2, input_text_attr=3, input_name_value=4, dars_factor=5),
     (1, 5, 9)),
    ("custom-click-attr", click(), click(), RewardConfig(click_name_attr=0.7), (0.3, 0.7, 1000)),
]


@pytest.mark.parametrize(("gold", "pred", "config", "expected"), [c[1:] for c in CELLS],
                         ids=[c[0] for c in CELLS])
def test_hierarchical_reward_table(gold, pred, config, expected):
    result = action_reward(pred, gold, config)
    got = (result.type, result.attribute, result.value)
    assert got == pytest.approx(expected, abs=1e-9)
    assert result.total == pytest.approx(sum(expected), abs=1e-9)
    assert result.action == pytest.approx(result.total)
    assert result.format == 0 and result.self_certainty == 0


def test_invalid_prediction_earns_nothing():
    result = action_reward(None, click())
    assert result.total == 0 and not result.valid


def test_default_config_is_used_when_none():
    assert action_reward(click(), click()).total == pytest.approx(1000.5)


BINARY = RewardConfig(action_reward="binary")
BINARY_CASES = [
    ("click-exact", click(), click(), 1.0),
    ("click-other-name", click(), click(NAME + "x"), 0.0),
    ("click-near-name", click(AT_THRESHOLD[0]), click(AT_THRESHOLD[1]), 0.0),
    ("terminate", Action("terminate"), Action("terminate"), 1.0),
    ("wrong-type", Action("terminate"), click(), 0.0),
    ("input-text-at-threshold", typed(text=AT_THRESHOLD[0]), typed(text=AT_THRESHOLD[1]), 1.0),
    ("input-text-below-threshold", typed(text=BELOW_GOLD), typed(text=BELOW_PRED), 0.0),
    ("input-other-name", typed(), typed(name="header.search"), 0.0),
]


@pytest.mark.parametrize(("gold", "pred", "expected"), [c[1:] for c in BINARY_CASES],
                         ids=[c[0] for c in BINARY_CASES])
def test_binary_reward(gold, pred, expected):
    result = action_reward(pred, gold, BINARY)
    assert result.total == expected == result.type
    assert result.attribute == result.value == 0


EXACT_CASES = [
    ("types-differ", click(), Action("terminate"), False, False),
    ("terminate", Action("terminate"), Action("terminate", "ignored"), True, True),
    ("scroll", Action("scroll"), Action("scroll"), True, True),
    ("click-same-name", click(), click(), True, True),
    ("click-name-surrounding-space", click(), click(f" {NAME} "), True, True),
    ("click-name-case-differs", click(), click(NAME.upper()), False, False),
    ("click-near-name", click(AT_THRESHOLD[0]), click(AT_THRESHOLD[1]), False, False),
    ("input-same", typed(), typed(), True, True),
    ("input-name-differs", typed(), typed(name="header.search"), False, False),
    ("input-text-case-space", typed(text="Two  Person tent"), typed(text="two person TENT "), True, True),
    ("input-text-at-threshold", typed(text=AT_THRESHOLD[0]), typed(text=AT_THRESHOLD[1]), True, False),
    ("input-text-below", typed(text=BELOW_GOLD), typed(text=BELOW_PRED), False, False),
    ("input-text-non-latin-equal", typed(text="テント"), typed(text="テント"), True, True),
    ("input-text-non-latin-differs", typed(text="テント"), typed(text="寝袋"), False, False),
    ("input-both-empty", typed(text=""), typed(text=""), True, True),
]


@pytest.mark.parametrize(("gold", "pred", "loose", "strict"), [c[1:] for c in EXACT_CASES],
                         ids=[c[0] for c in EXACT_CASES])
def test_exact_match(gold, pred, loose, strict):
    assert exact_match(pred, gold) is loose
    assert exact_match(pred, gold, strict_text=True) is strict


def test_exact_match_threshold_comes_from_config():
    gold, pred = typed(text=BELOW_GOLD), typed(text=BELOW_PRED)
    assert not exact_match(pred, gold, RewardConfig())
    assert exact_match(pred, gold, RewardConfig(rouge_threshold=0.7))
    assert exact_match(typed(text="a"), typed(text="b"), RewardConfig(rouge_threshold=0.0))


def test_none_never_matches():
    assert not exact_match(None, Action("terminate"))
    assert not type_match(None, Action("terminate"))


def test_type_match():
    assert type_match(click("x"), click("y"))
    assert not type_match(Action("terminate"), Action("scroll"))


def test_length_bound_shortcut_is_exact():
    """The token-count bound never changes a value: compare with plain thresholding."""
    long_pred = "tent " * 5000
    assert thresholded_similarity(long_pred, "tent", 0.75) == 0.0
    assert thresholded_similarity(long_pred, "tent", 0.0) == rouge_l(long_pred, "tent") > 0
    for a, b in [AT_THRESHOLD, (BELOW_GOLD, BELOW_PRED), ("a b c", "a b c d e")]:
        for threshold in (0.0, 0.5, 0.7, 0.75, 0.8, 1.0):
            sim = rouge_l(a, b)
            assert thresholded_similarity(a, b, threshold) == (sim if sim >= threshold else 0.0)
