"""verl's custom reward function (training.verl_backend.reward) is the Shop-R1 reward of rewards.score."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rewards
from shop_env.actions import Action
from training.verl_backend.reward import BREAKDOWN_KEYS, GroundTruthError, compute_score

CLICK = Action("click", "search_results.alpine_2_person_tent.view_product")
SEARCH = Action("type_and_submit", "header.search", "two person tent")


def _response(rationale: str, action: dict) -> str:
    return json.dumps({"rationale": rationale, "action": action})


OUTPUTS = [
    _response("The first tent looks light, I want a closer look.", CLICK.to_dict()),
    _response("I will look at this one.", {"type": "click", "name": "search_results.alpine_2_person"}),
    _response("Let me search.", {"type": "type_and_submit", "name": "header.search", "text": "2 person tent"}),
    _response("Done here.", {"type": "terminate"}),
    "```json\n" + _response("Fenced but fine.", CLICK.to_dict()) + "\n```",
    '{"rationale": "missing action"}',
    "not json at all",
    "",
]


@pytest.mark.parametrize("gold", [CLICK, SEARCH])
@pytest.mark.parametrize("text", OUTPUTS)
def test_compute_score_equals_rewards_score(text: str, gold: Action) -> None:
    out = compute_score("shop_r1/synthetic", text, gold.to_json(), {"index": 0})
    expected = rewards.score(text, gold, rewards.RewardConfig())
    assert out["score"] == pytest.approx(expected.total)
    for key in BREAKDOWN_KEYS:
        assert out[key] == pytest.approx(float(getattr(expected, key))), key
    assert out["valid"] == (1.0 if expected.valid else 0.0)
    assert isinstance(out["error"], str) and (out["error"] == "") == expected.valid
    assert out["self_certainty"] == 0.0  # added later by the trainer, from verl's entropy


def test_acc_and_type_match_flags() -> None:
    exact = compute_score("s", OUTPUTS[0], CLICK.to_json())
    assert exact["acc"] == 1.0 and exact["type_match"] == 1.0
    wrong_type = compute_score("s", OUTPUTS[3], CLICK.to_json())
    assert wrong_type["acc"] == 0.0 and wrong_type["type_match"] == 0.0
    invalid = compute_score("s", "nope", CLICK.to_json())
    assert invalid["acc"] == 0.0 and invalid["score"] == 0.0


def test_reward_config_comes_from_extra_info_and_kwargs_override_it() -> None:
    text = OUTPUTS[1]  # partial name match: the DARS-scaled value term is what changes
    cfg_small = {"dars_factor": 1.0, "rouge_threshold": 0.0}
    from_row = compute_score("s", text, CLICK.to_json(), {"reward_config": cfg_small})
    expected = rewards.score(text, CLICK, rewards.RewardConfig.from_dict(cfg_small))
    assert from_row["score"] == pytest.approx(expected.total)
    as_json = compute_score("s", text, CLICK.to_json(), {"reward_config": json.dumps(cfg_small)})
    assert as_json["score"] == pytest.approx(expected.total)
    overridden = compute_score("s", text, CLICK.to_json(), {"reward_config": cfg_small}, dars_factor=1000.0)
    big = rewards.score(text, CLICK, rewards.RewardConfig.from_dict({**cfg_small, "dars_factor": 1000.0}))
    assert overridden["score"] == pytest.approx(big.total)
    assert overridden["score"] != pytest.approx(from_row["score"])


def test_verl_call_extras_are_ignored() -> None:
    out = compute_score("s", OUTPUTS[0], CLICK.to_json(), {"num_turns": None, "rollout_reward_scores": {}},
                        reward_router_address=None, reward_model_tokenizer=None)
    assert out["score"] == pytest.approx(rewards.score(OUTPUTS[0], CLICK).total)


def test_binary_switch_reaches_rewards() -> None:
    out = compute_score("s", OUTPUTS[0], CLICK.to_json(), None, action_reward="binary", use_format=False)
    assert out["score"] == pytest.approx(1.0)


def test_unknown_reward_key_is_named() -> None:
    with pytest.raises(ValueError, match="dars"):
        compute_score("s", OUTPUTS[0], CLICK.to_json(), {"reward_config": {"dars": 3}})


@pytest.mark.parametrize("truth", ["{not json", '{"type": "fly"}', "[1, 2]", '{"type": "click", "name": 3}'])
def test_bad_ground_truth_names_the_row(truth: str) -> None:
    with pytest.raises(GroundTruthError, match=r"shop_r1/x row 7"):
        compute_score("shop_r1/x", OUTPUTS[0], truth, {"index": 7})


def test_ground_truth_may_be_a_struct_with_nulls() -> None:
    # Arrow hands a struct back with every field, absent ones as None.
    out = compute_score("s", OUTPUTS[3], {"type": "terminate", "name": None, "text": None})
    assert out["type"] == pytest.approx(0.3)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=50), st.none(), st.integers()))
def test_never_raises_on_model_output(text) -> None:
    out = compute_score("s", text, SEARCH.to_json())
    expected = rewards.score(text if isinstance(text, str) else "", SEARCH)
    assert out["score"] == pytest.approx(expected.total)
