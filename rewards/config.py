"""Reward settings (docs/architecture.md §5): the paper's Table 1 weights, DARS, and the switches.

One frozen dataclass, validated on construction, so that a bad YAML preset fails at load
time with the offending field named instead of producing silently wrong rewards.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

ACTION_REWARD_MODES: tuple[str, ...] = ("hierarchical", "binary")
SELF_CERTAINTY_VARIANTS: tuple[str, ...] = ("kl_p_u", "kl_u_p")

_WEIGHTS = (
    "type_reward",
    "click_name_attr",
    "input_name_attr",
    "input_text_attr",
    "input_name_value",
    "dars_factor",
    "format_weight",
    "self_certainty_alpha",
)
_SWITCHES = ("use_format", "use_self_certainty")
#: The largest self-certainty validation plans for: a KL divergence to the uniform
#: distribution is at most log(vocabulary size), about 12 for a 152k vocabulary; the
#: bound leaves room for any real vocabulary (log(1e300) is 690).
SELF_CERTAINTY_BOUND = 1000.0


@dataclass(frozen=True)
class RewardConfig:
    """Weights and switches of the Shop-R1 hybrid reward.

    Attributes:
        type_reward: paid when the predicted action type equals the gold type.
        click_name_attr: paid for a non-empty ``name`` on a correctly typed click.
        input_name_attr: paid for a non-empty ``name`` on a correct ``type_and_submit``.
        input_text_attr: paid for a non-empty ``text`` on a correct ``type_and_submit``.
        input_name_value: weight of ROUGE-L(name) on a correct ``type_and_submit``.
        dars_factor: difficulty-aware reward scaling applied to the long-text value
            (click name, typed text).
        rouge_threshold: ROUGE-L F1 below this counts as 0 similarity (also the
            exact-match threshold for typed text).
        format_weight: reward for a well-formed response.
        self_certainty_alpha: weight of the rationale's self-certainty.
        action_reward: ``"hierarchical"`` (Table 1) or ``"binary"`` (1 iff exact match).
        use_format: pay ``format_weight`` for a valid response.
        use_self_certainty: add ``alpha * self_certainty``.
        self_certainty_variant: ``"kl_p_u"`` (paper Eq. 3) or ``"kl_u_p"``.
        self_certainty_temperature: the temperature ``T`` of the distribution whose
            certainty is measured, ``softmax(z / T)``. None (the default) means the
            temperature the rationale was sampled at: ``grpo.temperature`` in GRPO (the
            distribution that produced the tokens, and the one verl's actor returns
            entropies of, so both backends pay the same bonus), 1 for greedy evaluation.

    Raises:
        ValueError: on construction, naming the field, when a weight is not a finite
            non-negative number, the threshold is outside [0, 1], a switch is not a bool,
            a mode/variant is unknown, or the largest reward the weights add up to
            (:meth:`max_reward`) is not finite.
    """

    type_reward: float = 0.3
    click_name_attr: float = 0.2
    input_name_attr: float = 0.1
    input_text_attr: float = 0.1
    input_name_value: float = 0.1
    dars_factor: float = 1000.0
    rouge_threshold: float = 0.75
    format_weight: float = 1.0
    self_certainty_alpha: float = 0.005
    action_reward: str = "hierarchical"
    use_format: bool = True
    use_self_certainty: bool = True
    self_certainty_variant: str = "kl_p_u"
    self_certainty_temperature: float | None = None

    def __post_init__(self) -> None:
        for name in _WEIGHTS:
            value = _number(name, getattr(self, name))
            if value < 0:
                raise ValueError(f"RewardConfig.{name} must be >= 0, got {value}")
            object.__setattr__(self, name, value)
        threshold = _number("rouge_threshold", self.rouge_threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"RewardConfig.rouge_threshold must be in [0, 1], got {threshold}")
        object.__setattr__(self, "rouge_threshold", threshold)
        for name in _SWITCHES:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(
                    f"RewardConfig.{name} must be true or false, got {type(value).__name__} {value!r}"
                )
        _choice("action_reward", self.action_reward, ACTION_REWARD_MODES)
        _choice("self_certainty_variant", self.self_certainty_variant, SELF_CERTAINTY_VARIANTS)
        if self.self_certainty_temperature is not None:
            temperature = _number("self_certainty_temperature", self.self_certainty_temperature)
            if temperature <= 0:
                raise ValueError(f"RewardConfig.self_certainty_temperature must be > 0 or null, got {temperature}")
            object.__setattr__(self, "self_certainty_temperature", temperature)
        # Each weight is finite, but a sum of them can still overflow to inf.
        if not math.isfinite(self.max_reward()):
            raise ValueError(
                "RewardConfig weights are each finite but the largest reward they add up to is not "
                f"(format_weight + type_reward + attributes + input_name_value + dars_factor + "
                f"self_certainty_alpha * {SELF_CERTAINTY_BOUND:g} overflows); lower the largest weights"
            )

    def max_reward(self) -> float:
        """The largest total :func:`rewards.score` can return under this config.

        Format, type, attribute and value rewards at their maxima (similarities are at
        most 1), plus ``self_certainty_alpha`` times :data:`SELF_CERTAINTY_BOUND`. The
        binary mode pays at most 1 for the action.
        """
        fmt = self.format_weight if self.use_format else 0.0
        certainty = self.self_certainty_alpha * SELF_CERTAINTY_BOUND if self.use_self_certainty else 0.0
        if self.action_reward == "binary":
            action = 1.0
        else:
            click = self.click_name_attr + self.dars_factor
            typed = self.input_name_attr + self.input_text_attr + self.input_name_value + self.dars_factor
            action = self.type_reward + max(click, typed)
        return fmt + certainty + action

    @classmethod
    def coerce(cls, value: RewardConfig | Mapping[str, Any] | None) -> RewardConfig:
        """The config ``value`` stands for: itself, one built from a dict of fields, or the defaults (None).

        Raises:
            ValueError: a dict with an unknown field or a bad value (see :meth:`from_dict`).
            TypeError: ``value`` is none of these.
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise TypeError(f"reward must be a RewardConfig, a dict or None, got {type(value).__name__}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RewardConfig:
        """Build a config from a mapping (e.g. the ``reward:`` section of a YAML preset).

        Args:
            data: field name -> value; missing fields keep their defaults; ``None`` means
                all defaults.

        Returns:
            The validated config.

        Raises:
            ValueError: ``data`` is not a mapping, a key is not a field (the message names
                the key and close matches), or a value is invalid (see the class).
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"reward config must be a mapping, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(
                    f"unknown reward config key {key!r}{hint} (known keys: {', '.join(known)})"
                )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (round-trips through :meth:`from_dict`)."""
        return asdict(self)


def _number(name: str, value: Any) -> float:
    # bool is an int subclass; "true" as a weight is almost certainly a typo.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str):
            hint = " (YAML reads e.g. 1e-3 as a string; write 1.0e-3)"
        raise ValueError(
            f"RewardConfig.{name} must be a number, got {type(value).__name__} {value!r}{hint}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"RewardConfig.{name} must be finite, got {value}")
    return value


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"RewardConfig.{name} must be one of {', '.join(allowed)}, got {value!r}")
