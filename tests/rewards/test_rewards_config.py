"""RewardConfig: docs/architecture.md §5 defaults, validation, dict round trip, unknown-key errors."""

from __future__ import annotations

import math

import pytest

from rewards import RewardConfig

DESIGN_DEFAULTS = {
    "type_reward": 0.3, "click_name_attr": 0.2, "input_name_attr": 0.1, "input_text_attr": 0.1,
    "input_name_value": 0.1, "dars_factor": 1000, "rouge_threshold": 0.75, "format_weight": 1.0,
    "self_certainty_alpha": 0.005, "action_reward": "hierarchical", "use_format": True,
    "use_self_certainty": True, "self_certainty_variant": "kl_p_u", "self_certainty_temperature": None,
}


def test_defaults_are_the_design_values():
    assert RewardConfig().to_dict() == DESIGN_DEFAULTS


def test_round_trip_through_dict():
    config = RewardConfig(dars_factor=1, action_reward="binary", use_self_certainty=False,
                          self_certainty_variant="kl_u_p")
    assert RewardConfig.from_dict(config.to_dict()) == config


def test_from_dict_keeps_defaults_for_missing_keys_and_accepts_none():
    assert RewardConfig.from_dict({"dars_factor": 1}) == RewardConfig(dars_factor=1.0)
    assert RewardConfig.from_dict(None) == RewardConfig()
    assert isinstance(RewardConfig.from_dict({"dars_factor": 1}).dars_factor, float)


def test_unknown_key_is_named_with_close_matches():
    with pytest.raises(ValueError, match=r"'dars_factr'.*dars_factor"):
        RewardConfig.from_dict({"dars_factr": 10})
    with pytest.raises(ValueError, match=r"unknown reward config key 'zzz'"):
        RewardConfig.from_dict({"zzz": 1})


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ValueError, match="mapping"):
        RewardConfig.from_dict([("dars_factor", 1)])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("dars_factor", -1, "dars_factor must be >= 0"),
    ("type_reward", math.nan, "type_reward must be finite"),
    ("format_weight", math.inf, "format_weight must be finite"),
    ("self_certainty_alpha", "1e-3", "self_certainty_alpha must be a number.*1.0e-3"),
    ("click_name_attr", True, "click_name_attr must be a number"),
    ("rouge_threshold", 1.5, r"rouge_threshold must be in \[0, 1\]"),
    ("rouge_threshold", None, "rouge_threshold must be a number"),
    ("use_format", "yes", "use_format must be true or false"),
    ("use_self_certainty", 1, "use_self_certainty must be true or false"),
    ("action_reward", "soft", "action_reward must be one of hierarchical, binary"),
    ("self_certainty_variant", "entropy", "self_certainty_variant must be one of kl_p_u, kl_u_p"),
])
def test_invalid_values_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        RewardConfig.from_dict({field: value})


def test_config_is_immutable():
    with pytest.raises(AttributeError):
        RewardConfig().dars_factor = 1.0  # type: ignore[misc]


def test_coerce_takes_a_config_a_dict_or_none():
    from rewards import RewardConfig

    custom = RewardConfig(dars_factor=1.0)
    assert RewardConfig.coerce(custom) is custom
    assert RewardConfig.coerce(None) == RewardConfig()
    assert RewardConfig.coerce({"dars_factor": 1.0}) == custom
    with pytest.raises(TypeError, match="got list"):
        RewardConfig.coerce([("dars_factor", 1.0)])
